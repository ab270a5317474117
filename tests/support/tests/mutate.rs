//! Issue 6, defaulting: the real API server calls the operator's mutating webhook, which
//! rewrites D4's short forms (`expose: true`, bare model strings) into the stored form before
//! validation, and refuses a single provider object with the list form spelled out.

use anyhow::{Context, Result, anyhow, ensure};
use llama_stack_operator::api::crd;
use llama_stack_operator::webhook::MUTATE_PATH;
use llsd_test_support::k8s_openapi::api::admissionregistration::v1::MutatingWebhookConfiguration;
use llsd_test_support::kube::api::{Api, PostParams};
use llsd_test_support::{TestNamespace, client};
use serde_json::json;

mod common;
use common::{llsd_api, object};

#[tokio::test]
async fn short_forms_are_rewritten_before_validation() -> Result<()> {
    let client = client().await?;
    common::install_crd(&client, crd::crd()?).await?;
    let hook = common::start_webhooks().await?;
    let ns = TestNamespace::create(&client, "mutate").await?;
    let name = format!("llsd-test-{}", ns.name());
    // Removed however the test ends.
    let _mutating =
        llsd_test_support::DeleteOnDrop::<MutatingWebhookConfiguration>::new(name.clone()).await?;
    let config: MutatingWebhookConfiguration = serde_json::from_value(json!({
        "apiVersion": "admissionregistration.k8s.io/v1", "kind": "MutatingWebhookConfiguration",
        "metadata": {"name": name},
        "webhooks": [common::admission_webhook("defaults.llamastack.io", hook.url(MUTATE_PATH), &hook.ca, ns.name(), &["v1alpha2"])]
    }))?;
    let configs: Api<MutatingWebhookConfiguration> = Api::all(client.clone());
    configs
        .create(&PostParams::default(), &config)
        .await
        .context("registering the webhook")?;
    let result = exercise(&client, ns.name()).await;
    hook.task.abort();
    result
}

async fn exercise(client: &llsd_test_support::kube::Client, ns: &str) -> Result<()> {
    let api = llsd_api(client, ns, "v1alpha2");
    let short = json!({"distribution": {"name": "starter"},
        "networking": {"expose": true},
        "resources": {"models": ["meta-llama/Llama-3.1-8B-Instruct", {"name": "typed"}]}});
    // The webhook configuration takes a moment to reach the API server's admission chain.
    let mut created = None;
    for _ in 0..100 {
        match api
            .create(
                &PostParams::default(),
                &object("v1alpha2", "short", short.clone()),
            )
            .await
        {
            Ok(o) => {
                created = Some(o);
                break;
            }
            Err(_) => tokio::time::sleep(std::time::Duration::from_millis(200)).await,
        }
    }
    let stored = created
        .ok_or_else(|| anyhow!("expose: true was never accepted: is the webhook called?"))?;
    ensure!(
        stored.data["spec"]["networking"]["expose"] == json!({"enabled": true}),
        "{}",
        stored.data["spec"]
    );
    ensure!(
        stored.data["spec"]["resources"]["models"]
            == json!([{"name": "meta-llama/Llama-3.1-8B-Instruct"}, {"name": "typed"}]),
        "{}",
        stored.data["spec"]
    );
    let off = json!({"distribution": {"name": "starter"}, "networking": {"expose": false}});
    let stored = api
        .create(&PostParams::default(), &object("v1alpha2", "off", off))
        .await?;
    ensure!(stored.data["spec"]["networking"]["expose"] == json!({"enabled": false}));

    let single = json!({"distribution": {"name": "starter"}, "providers": {"inference": {"provider": "vllm"}}});
    let err = api
        .create(
            &PostParams::default(),
            &object("v1alpha2", "single", single),
        )
        .await
        .err()
        .ok_or_else(|| anyhow!("a single provider object must be refused"))?;
    let text = err.to_string();
    ensure!(
        text.contains("spec.providers.inference must be a list, also for one provider")
            && text.contains("`inference: [{provider: ..., endpoint: ...}]`"),
        "{text}"
    );
    Ok(())
}
