//! Issue 9: every shell command in the user documentation is exercised. For each fenced
//! block of the files in [`FILES`] whose info string is `sh`, `bash`, `shell`, `zsh` or
//! `console`:
//!
//! * a command starting with `llama-stack-operator ` runs here, for real, through `sh -c`
//!   with the repository root as working directory and `$LLSD_OPERATOR_BIN` on `PATH` as
//!   `llama-stack-operator` (so pipes, here-documents and `${VAR:-default}` work as a reader's
//!   shell would run them). It must exit 0, or N when its first line ends with `# exits N`.
//!   With a `# run by:` comment instead (`llama-stack-operator run`), it is checked like the
//!   commands below.
//! * any other command (kubectl, make, cargo, ...) must end with `# run by: <path>`, naming a
//!   file of the repository (not Markdown) whose content holds the command's distinctive
//!   argument (see [`distinctive`]): the test or script that really runs it. A command whose
//!   runner is this file runs here like the operator's own commands (the vendor-plugin build
//!   that `docs/plugins.md` then tries with `generate --plugin`).
//! * a `text` block right after a shell block shows the output of that block's last command
//!   when it ran here: each of its non-blank lines must be a line of that output (stdout or
//!   stderr), except lines that are just `...` (lines left out); runs of 12 or more hex digits
//!   (digests, content hashes) are not compared.
//!
//! A command is a line, joined with the next while it ends in `\`, plus the body of a
//! here-document it opens (`<<'EOF'` ... `EOF`). Blank lines and `#` comment lines are not
//! commands. Failures name `file:line`. FAILS, never skips, without `LLSD_OPERATOR_BIN`
//! (`tests/cluster/run-tests.sh` sets it).

use anyhow::{Context, Result, anyhow, bail, ensure};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// The documents checked, relative to the repository root.
const FILES: &[&str] = &[
    "README.md",
    "docs/configuration.md",
    "docs/migration-v1alpha1-to-v1alpha2.md",
    "docs/plugins.md",
    "docs/operations.md",
    "playground/README.md",
];

/// This file, as `# run by:` names it.
const THIS_FILE: &str = "tests/support/tests/docs.rs";

/// The program whose commands run here.
const OPERATOR: &str = "llama-stack-operator";

/// Longest an operator command may take: they are offline and finish in seconds, but a
/// `run` line without `# run by:` would never end.
const OPERATOR_TIMEOUT: Duration = Duration::from_secs(120);
/// Longest any other command run here may take (a cold vendor-plugin build).
const TIMEOUT: Duration = Duration::from_secs(1200);

/// Fewest commands the documents must hold, so that a parser regression cannot pass
/// vacuously.
const MIN_RUN_HERE: usize = 20;

// ---------------------------------------------------------------------------------------
// Parsing

/// One documented command.
#[derive(Debug, Clone, PartialEq, Eq)]
struct DocCommand {
    /// `docs/x.md:12` (its first line).
    at: String,
    /// What `sh -c` gets: the logical line and any here-document body.
    script: String,
    /// The words of the logical line before its comment (quotes removed).
    words: Vec<String>,
    /// The same words as written (quotes kept).
    raw: Vec<String>,
    /// The trailing comment, without `#`.
    comment: Option<String>,
}

/// A fenced block: its info string, first content line (1-based) and lines.
#[derive(Debug, Clone)]
struct Block {
    info: String,
    first_line: usize,
    lines: Vec<String>,
}

fn blocks(text: &str) -> Result<Vec<Block>> {
    let mut out = Vec::new();
    let mut open: Option<Block> = None;
    for (i, line) in text.lines().enumerate() {
        let fence = line.trim_start().strip_prefix("```");
        match (&mut open, fence) {
            (None, Some(info)) => {
                open = Some(Block {
                    info: info.trim().to_string(),
                    first_line: i + 2,
                    lines: Vec::new(),
                })
            }
            (Some(_), Some(rest)) if rest.trim().is_empty() => {
                out.extend(open.take());
            }
            (Some(b), _) => b.lines.push(line.to_string()),
            (None, None) => {}
        }
    }
    if let Some(b) = open {
        bail!("line {}: a fenced block is never closed", b.first_line - 1);
    }
    Ok(out)
}

fn is_shell(info: &str) -> bool {
    matches!(
        info.split_whitespace().next(),
        Some("sh" | "bash" | "shell" | "zsh" | "console")
    )
}

/// Splits a line into words the way `sh` would for plain words and quotes, and returns the
/// comment (text after an unquoted `#` that starts a word), if any. Each word comes as
/// (value without quotes, text as written).
fn shell_words(line: &str) -> (Vec<(String, String)>, Option<String>) {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut start: Option<usize> = None;
    let mut chars = line.char_indices().peekable();
    let mut end_word = |word: &mut String, start: &mut Option<usize>, end: usize| {
        if let Some(s) = start.take() {
            words.push((std::mem::take(word), line[s..end].to_string()));
        }
    };
    while let Some((i, c)) = chars.next() {
        match c {
            '#' if start.is_none() => {
                return (words, Some(line[i + 1..].trim().to_string()));
            }
            c if c.is_whitespace() => end_word(&mut word, &mut start, i),
            '\'' => {
                start.get_or_insert(i);
                for (_, c) in chars.by_ref() {
                    if c == '\'' {
                        break;
                    }
                    word.push(c);
                }
            }
            '"' => {
                start.get_or_insert(i);
                while let Some((_, c)) = chars.next() {
                    match c {
                        '"' => break,
                        '\\' => {
                            if let Some((_, n)) = chars.next() {
                                word.push(n);
                            }
                        }
                        c => word.push(c),
                    }
                }
            }
            '\\' => {
                start.get_or_insert(i);
                if let Some((_, n)) = chars.next() {
                    word.push(n);
                }
            }
            c => {
                start.get_or_insert(i);
                word.push(c);
            }
        }
    }
    end_word(&mut word, &mut start, line.len());
    (words, None)
}

/// The delimiter of a here-document the words open (`<<EOF`, `<< 'EOF'`, `<<-"EOF"`), and
/// whether leading tabs are stripped (`<<-`).
fn heredoc(words: &[String]) -> Option<(String, bool)> {
    for (i, w) in words.iter().enumerate() {
        let Some(rest) = w.strip_prefix("<<") else {
            continue;
        };
        let (rest, strip) = match rest.strip_prefix('-') {
            Some(r) => (r, true),
            None => (rest, false),
        };
        let word = if rest.is_empty() {
            words.get(i + 1)?.clone()
        } else {
            rest.to_string()
        };
        return Some((word, strip));
    }
    None
}

/// The commands of one shell block.
fn commands(file: &str, block: &Block) -> Result<Vec<DocCommand>> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < block.lines.len() {
        let first = i;
        let line = block.lines[i].trim();
        i += 1;
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut logical = line.to_string();
        let mut script = block.lines[first].clone();
        while logical.ends_with('\\') {
            let next = block.lines.get(i).ok_or_else(|| {
                anyhow!(
                    "{file}:{}: the command ends in \\ at the end of its block",
                    block.first_line + first
                )
            })?;
            logical.pop();
            logical.push(' ');
            logical.push_str(next.trim());
            script.push('\n');
            script.push_str(next);
            i += 1;
        }
        let (split, comment) = shell_words(&logical);
        let (words, raw): (Vec<String>, Vec<String>) = split.into_iter().unzip();
        if let Some((delimiter, strip_tabs)) = heredoc(&words) {
            loop {
                let body = block.lines.get(i).ok_or_else(|| {
                    anyhow!(
                        "{file}:{}: the here-document is not closed by a line {delimiter}",
                        block.first_line + first
                    )
                })?;
                i += 1;
                script.push('\n');
                script.push_str(body);
                let end = if strip_tabs {
                    body.trim_start_matches('\t')
                } else {
                    body
                };
                if end == delimiter {
                    break;
                }
            }
        }
        out.push(DocCommand {
            at: format!("{file}:{}", block.first_line + first),
            script,
            words,
            raw,
            comment,
        });
    }
    Ok(out)
}

/// `NAME=value`: an environment assignment before the program.
fn is_assignment(word: &str) -> bool {
    word.split_once('=').is_some_and(|(name, _)| {
        !name.is_empty()
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            && !name.starts_with(|c: char| c.is_ascii_digit())
    })
}

/// The words of the first simple command: assignments before the program dropped, cut at
/// the first pipe, list operator or redirection.
fn first_command(words: &[String]) -> Vec<&str> {
    words
        .iter()
        .map(String::as_str)
        .skip_while(|w| is_assignment(w))
        .take_while(|w| {
            !matches!(*w, "|" | "||" | "&&" | ";" | "&") && !w.starts_with(['<', '>', '|'])
        })
        .collect()
}

/// Which word a runner's content must hold for a command (its index in the words): the first
/// argument that is a path (holds `/`), else the value of `-p`/`--package`, else the last
/// argument that is not a flag, else the program.
fn distinctive(words: &[String]) -> Option<usize> {
    let skip = words.iter().take_while(|w| is_assignment(w)).count();
    let n = first_command(words).len();
    let args = skip + 1..skip + n;
    let flag = |i: &usize| words[*i].starts_with('-');
    if let Some(i) = args.clone().find(|i| !flag(i) && words[*i].contains('/')) {
        return Some(i);
    }
    for i in args.clone() {
        if words[i].starts_with("--package=") {
            return Some(i);
        }
        if (words[i] == "-p" || words[i] == "--package") && args.contains(&(i + 1)) {
            return Some(i + 1);
        }
    }
    args.rev().find(|i| !flag(i)).or((n > 0).then_some(skip))
}

/// Whether `content` holds `arg`; for a path, its last component as a quoted string also
/// counts (tests assemble paths from pieces: `build("cert-manager")`).
fn mentions(content: &str, arg: &str) -> bool {
    let arg = arg.trim_start_matches("./");
    let arg = arg.strip_prefix("--package=").unwrap_or(arg);
    if content.contains(arg) {
        return true;
    }
    match arg.trim_end_matches('/').rsplit_once('/') {
        Some((_, last)) if !last.is_empty() => content.contains(&format!("\"{last}\"")),
        _ => false,
    }
}

/// `exits N` in the comment: the exit code the command must have (default 0).
fn expected_exit(comment: Option<&str>) -> Result<i32> {
    let Some(c) = comment else { return Ok(0) };
    match c.strip_prefix("exits") {
        Some(n) => n
            .trim()
            .parse()
            .map_err(|_| anyhow!("`# exits {}` is not a number", n.trim())),
        None => Ok(0),
    }
}

fn run_by(comment: Option<&str>) -> Option<&str> {
    comment?
        .strip_prefix("run by:")
        .map(str::trim)
        .filter(|p| !p.is_empty())
}

// ---------------------------------------------------------------------------------------
// Running

fn repo_root() -> Result<PathBuf> {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .context("the repository root")
}

/// A directory holding `llama-stack-operator` -> `$LLSD_OPERATOR_BIN`, for `PATH`.
fn operator_on_path() -> Result<tempfile::TempDir> {
    let bin = std::env::var_os("LLSD_OPERATOR_BIN").ok_or_else(|| {
        anyhow!(
            "LLSD_OPERATOR_BIN is not set: build with `cargo build -p llama-stack-operator` and \
             point it at the binary (tests/cluster/run-tests.sh does)"
        )
    })?;
    let bin = PathBuf::from(bin);
    ensure!(
        bin.is_file(),
        "LLSD_OPERATOR_BIN={} is not a file",
        bin.display()
    );
    let dir = tempfile::tempdir()?;
    std::os::unix::fs::symlink(bin.canonicalize()?, dir.path().join(OPERATOR))?;
    Ok(dir)
}

struct Ran {
    status: ExitStatus,
    stdout: String,
    stderr: String,
}

fn run_script(root: &Path, bin_dir: &Path, script: &str, timeout: Duration) -> Result<Ran> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let mut dirs = vec![bin_dir.to_path_buf()];
    dirs.extend(std::env::split_paths(&path));
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg(script)
        .current_dir(root)
        .env("PATH", std::env::join_paths(dirs)?)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // A nested cargo build must not inherit instrumentation of the outer one.
    for var in [
        "RUSTFLAGS",
        "CARGO_ENCODED_RUSTFLAGS",
        "CARGO_BUILD_RUSTFLAGS",
        "RUSTC_WRAPPER",
    ] {
        cmd.env_remove(var);
    }
    let mut child = cmd.spawn().context("starting sh")?;
    let drain = |r: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut s = Vec::new();
            if let Some(mut r) = r {
                let _ = r.read_to_end(&mut s);
            }
            String::from_utf8_lossy(&s).into_owned()
        })
    };
    let out = drain(child.stdout.take().map(|p| Box::new(p) as _));
    let err = drain(child.stderr.take().map(|p| Box::new(p) as _));
    let started = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait()? {
            break s;
        }
        if started.elapsed() > timeout {
            let _ = child.kill();
            let _ = child.wait();
            bail!("did not finish within {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Ok(Ran {
        status,
        stdout: out.join().unwrap_or_default(),
        stderr: err.join().unwrap_or_default(),
    })
}

/// The end of a long output, for failure messages.
fn tail(s: &str) -> &str {
    let cut = s.len().saturating_sub(2000);
    let cut = (cut..s.len()).find(|&i| s.is_char_boundary(i)).unwrap_or(0);
    &s[cut..]
}

/// Checks one command; `Ok(Some(output))` when it ran here.
fn check(root: &Path, bin_dir: &Path, c: &DocCommand) -> Result<Option<String>> {
    let comment = c.comment.as_deref();
    let program = first_command(&c.words).first().copied().unwrap_or_default();
    let runner = run_by(comment);
    let here = match runner {
        None if program == OPERATOR => true,
        None => bail!(
            "`{}` is not run by this test: end it with `# run by: <the test or script that runs \
             it>`",
            c.words.join(" ")
        ),
        Some(THIS_FILE) => true,
        Some(path) => {
            ensure!(
                !path.ends_with(".md"),
                "`# run by: {path}`: a document cannot vouch for a command; name the test or \
                 script that runs it"
            );
            let file = root.join(path);
            let content = std::fs::read_to_string(&file)
                .with_context(|| format!("`# run by: {path}` names no readable file"))?;
            let i = distinctive(&c.words).context("an empty command")?;
            let (arg, raw) = (&c.words[i], &c.raw[i]);
            ensure!(
                mentions(&content, arg) || mentions(&content, raw),
                "`# run by: {path}`: that file does not contain `{arg}`, so it does not run \
                 `{}`",
                c.words.join(" ")
            );
            false
        }
    };
    if !here {
        return Ok(None);
    }
    let want = expected_exit(comment)?;
    let timeout = if program == OPERATOR {
        OPERATOR_TIMEOUT
    } else {
        TIMEOUT
    };
    let ran = run_script(root, bin_dir, &c.script, timeout)?;
    let got = ran.status.code().unwrap_or(-1);
    ensure!(
        got == want,
        "`{}` exited {got}, the document says {want}\n--- stderr (end) ---\n{}\n--- stdout (end) \
         ---\n{}",
        c.script,
        tail(&ran.stderr),
        tail(&ran.stdout)
    );
    Ok(Some(format!("{}\n{}", ran.stdout, ran.stderr)))
}

/// A line with every run of 12 or more lowercase hex digits replaced by `<hex>`: digests and
/// content hashes change with every build of the engine, the rest of a line does not.
fn masked(line: &str) -> String {
    let mut out = String::new();
    let mut run = String::new();
    for c in line.trim_end().chars().chain(std::iter::once('\n')) {
        if c.is_ascii_digit() || ('a'..='f').contains(&c) {
            run.push(c);
            continue;
        }
        if run.len() >= 12 {
            out.push_str("<hex>");
        } else {
            out.push_str(&run);
        }
        run.clear();
        if c != '\n' {
            out.push(c);
        }
    }
    out
}

/// The lines of a `text` block that the output lacks, with their line numbers.
fn shown_lines_missing(shown: &Block, output: &str) -> Vec<(usize, String)> {
    let have: std::collections::BTreeSet<String> = output.lines().map(masked).collect();
    shown
        .lines
        .iter()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty() && l.trim() != "...")
        .filter(|(_, l)| !have.contains(&masked(l)))
        .map(|(i, l)| (shown.first_line + i, l.clone()))
        .collect()
}

#[test]
fn every_documented_command_runs_or_names_its_runner() -> Result<()> {
    let root = repo_root()?;
    let bin_dir = operator_on_path()?;
    let mut failures = Vec::new();
    let (mut ran_here, mut vouched) = (0, 0);
    for file in FILES {
        let text =
            std::fs::read_to_string(root.join(file)).with_context(|| format!("reading {file}"))?;
        let blocks = blocks(&text).with_context(|| file.to_string())?;
        // The output of the previous shell block's last command, if it ran here.
        let mut last_output: Option<(String, String)> = None;
        let mut previous_end = 0;
        for block in &blocks {
            let adjacent = text
                .lines()
                .skip(previous_end)
                .take((block.first_line - 2).saturating_sub(previous_end))
                .all(|l| l.trim().is_empty());
            previous_end = block.first_line - 1 + block.lines.len() + 1;
            if block.info == "text" {
                if let (true, Some((at, output))) = (adjacent, last_output.take()) {
                    for (line, l) in shown_lines_missing(block, &output) {
                        failures.push(format!(
                            "{file}:{line}: the output shown for `{at}` has a line the command \
                             did not print: {l:?}"
                        ));
                    }
                }
                continue;
            }
            last_output = None;
            if !is_shell(&block.info) {
                continue;
            }
            let cmds = match commands(file, block) {
                Ok(c) => c,
                Err(e) => {
                    failures.push(format!("{e:#}"));
                    continue;
                }
            };
            for c in &cmds {
                match check(&root, bin_dir.path(), c) {
                    Ok(Some(output)) => {
                        ran_here += 1;
                        last_output = Some((c.at.clone(), output));
                    }
                    Ok(None) => {
                        vouched += 1;
                        last_output = None;
                    }
                    Err(e) => {
                        failures.push(format!("{}: {e:#}", c.at));
                        last_output = None;
                    }
                }
            }
        }
    }
    ensure!(
        failures.is_empty(),
        "{} documented command(s) failed:\n\n{}",
        failures.len(),
        failures.join("\n\n")
    );
    ensure!(
        ran_here >= MIN_RUN_HERE,
        "only {ran_here} commands ran (and {vouched} named their runner): the documents lost \
         their examples, or the parser lost them"
    );
    println!("{ran_here} commands ran here, {vouched} named the test or script that runs them");
    Ok(())
}

// ---------------------------------------------------------------------------------------
// The parser itself

fn words(s: &[&str]) -> Vec<String> {
    s.iter().map(|w| w.to_string()).collect()
}

#[test]
fn words_quotes_and_comments() {
    let (w, c) = shell_words(r#"kubectl apply -f "a b" 'c#d' e\ f x='{"\n"}'  # run by: x/y.rs"#);
    let (values, raw): (Vec<String>, Vec<String>) = w.into_iter().unzip();
    assert_eq!(
        values,
        words(&["kubectl", "apply", "-f", "a b", "c#d", "e f", "x={\"\\n\"}"])
    );
    assert_eq!(raw[3], "\"a b\"");
    assert_eq!(raw[6], r#"x='{"\n"}'"#);
    assert_eq!(c.as_deref(), Some("run by: x/y.rs"));
    let (w, c) = shell_words("echo a#b ${#x}");
    assert_eq!(w.len(), 3);
    assert_eq!(w[2].0, "${#x}");
    assert_eq!(c, None);
}

#[test]
fn heredocs_and_continuations_are_one_command() -> Result<()> {
    let block = Block {
        info: "sh".into(),
        first_line: 10,
        lines: [
            "# a comment line",
            "llama-stack-operator generate -f - <<'EOF'   # exits 1",
            "spec: {}",
            "EOF",
            "",
            "kubectl apply \\",
            "  -k deploy/default   # run by: tests/support/tests/deploy.rs",
        ]
        .map(String::from)
        .to_vec(),
    };
    let cmds = commands("d.md", &block)?;
    assert_eq!(cmds.len(), 2);
    assert_eq!(cmds[0].at, "d.md:11");
    assert_eq!(
        cmds[0].script,
        "llama-stack-operator generate -f - <<'EOF'   # exits 1\nspec: {}\nEOF"
    );
    assert_eq!(expected_exit(cmds[0].comment.as_deref())?, 1);
    assert_eq!(cmds[1].at, "d.md:15");
    assert_eq!(
        cmds[1].words,
        words(&["kubectl", "apply", "-k", "deploy/default"])
    );
    assert_eq!(
        run_by(cmds[1].comment.as_deref()),
        Some("tests/support/tests/deploy.rs")
    );
    let open = Block {
        lines: vec!["cat <<EOF".into(), "x".into()],
        ..block
    };
    assert!(commands("d.md", &open).is_err());
    Ok(())
}

#[test]
fn distinctive_arguments() {
    let d = |s: &str| {
        let w: Vec<String> = shell_words(s).0.into_iter().map(|(v, _)| v).collect();
        distinctive(&w).map(|i| w[i].clone())
    };
    assert_eq!(
        d("kubectl apply --server-side -k deploy/default").as_deref(),
        Some("deploy/default")
    );
    assert_eq!(
        d("kubectl apply -f ./deploy/release/operator.yaml | tee x/y").as_deref(),
        Some("./deploy/release/operator.yaml")
    );
    assert_eq!(
        d("cargo build --release --target wasm32-wasip2 -p acme-llama-stack-plugin").as_deref(),
        Some("acme-llama-stack-plugin")
    );
    assert_eq!(d("make demo").as_deref(), Some("demo"));
    assert_eq!(d("make").as_deref(), Some("make"));
    assert_eq!(d("KUBECONFIG=k kubectl get llsd").as_deref(), Some("llsd"));
    assert!(mentions(
        "see deploy/release/operator.yaml",
        "./deploy/release/operator.yaml"
    ));
    assert!(mentions(
        r#"let b = build("cert-manager")?;"#,
        "deploy/cert-manager"
    ));
    assert!(!mentions("cert-manager", "deploy/cert-manager"));
}

#[test]
fn shown_output_is_compared_by_line_with_hashes_masked() {
    let shown = Block {
        info: "text".into(),
        first_line: 5,
        lines: ["NAME  SHA", "...", "builtin  dd15d795b096", "gone"]
            .map(String::from)
            .to_vec(),
    };
    let missing = shown_lines_missing(&shown, "NAME  SHA\nbuiltin  0123456789ab\n");
    assert_eq!(missing, vec![(8, "gone".to_string())]);
}
