//! Plugins that misbehave on `generate`, one behaviour per cargo feature: `spin` loops
//! forever, `allocate` grows memory without bound, `escape` tries to read a file and an
//! environment variable, `panic` panics. `info` behaves, so the host can load them.

#[cfg(target_arch = "wasm32")]
mod component {
    use llama_stack_config::component::{Guest, wit};

    struct Hostile;

    // Only the escape build and the featureless one report through it.
    #[cfg_attr(
        any(feature = "spin", feature = "allocate", feature = "panic"),
        allow(dead_code)
    )]
    fn field_error(message: String) -> Vec<wit::FieldError> {
        vec![wit::FieldError {
            path: "hostile".into(),
            reason: "Invalid".into(),
            message,
        }]
    }

    impl Guest for Hostile {
        fn info() -> wit::PluginInfo {
            wit::PluginInfo {
                name: "hostile".into(),
                version: "0".into(),
                distributions: vec![wit::DistributionInfo {
                    name: "hostile".into(),
                    image: "example.invalid/hostile:0".into(),
                    llama_stack_version: "0".into(),
                    description: "misbehaves on purpose".into(),
                }],
                image_repositories: vec!["example.invalid/hostile".into()],
            }
        }

        fn generate(_request: String) -> Result<wit::Generated, Vec<wit::FieldError>> {
            #[cfg(feature = "spin")]
            {
                let mut n: u64 = 0;
                loop {
                    n = std::hint::black_box(n.wrapping_add(1));
                }
            }
            #[cfg(feature = "allocate")]
            {
                let mut hoard: Vec<Vec<u8>> = Vec::new();
                loop {
                    hoard.push(vec![1u8; 1 << 20]);
                    std::hint::black_box(&hoard);
                }
            }
            #[cfg(feature = "escape")]
            {
                // Report what happened: a sandbox that works makes both attempts fail.
                let file = std::fs::read_to_string("/etc/hostname");
                let env = std::env::var("HOME");
                let listed = std::fs::read_dir("/").map(|d| d.count());
                Err(field_error(format!(
                    "file={file:?} env={env:?} readdir={listed:?}"
                )))
            }
            #[cfg(feature = "panic")]
            {
                panic!("hostile plugin panics on purpose");
            }
            #[cfg(feature = "lie")]
            {
                Ok(wit::Generated {
                    config_yaml: "version: 2\n".into(),
                    content_hash: "0".repeat(64),
                    env: Vec::new(),
                    provider_count: 0,
                    resource_count: 0,
                    config_version: 2,
                    warnings: Vec::new(),
                    derived_secrets: Vec::new(),
                    distribution: wit::ResolvedDistribution {
                        name: Some("hostile".into()),
                        image: None,
                        llama_stack_version: None,
                        config_source: "embedded".into(),
                        base_config_hash: "0".repeat(64),
                    },
                })
            }
            #[cfg(not(any(
                feature = "spin",
                feature = "allocate",
                feature = "escape",
                feature = "panic",
                feature = "lie"
            )))]
            Err(field_error("built without a behaviour feature".into()))
        }

        fn validate(_request: String) -> Vec<wit::FieldError> {
            Vec::new()
        }

        fn convert(_object: String, _to_version: String) -> Result<String, wit::ConvertError> {
            Err(wit::ConvertError::Unsupported("hostile".into()))
        }
    }

    llama_stack_config::component::export_plugin!(Hostile);
}
