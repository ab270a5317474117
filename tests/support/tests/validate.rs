//! Issue 6, validation: the real API server calls the operator's validating webhook, which
//! reports what CEL cannot see (FR-076..079d): the distribution registry, references to
//! Secrets, keys and ConfigMaps in the namespace, model -> provider references, all at once
//! with field paths.

use anyhow::{Context, Result, anyhow, ensure};
use llama_stack_operator::api::crd;
use llama_stack_operator::webhook::VALIDATE_PATH;
use llsd_test_support::k8s_openapi::api::admissionregistration::v1::ValidatingWebhookConfiguration;
use llsd_test_support::k8s_openapi::api::core::v1::{ConfigMap, Secret};
use llsd_test_support::kube::api::{Api, DeleteParams, PostParams};
use llsd_test_support::{TestNamespace, client};
use serde_json::{Value, json};

mod common;
use common::{llsd_api, object};

#[tokio::test]
async fn the_webhook_rejects_what_cel_cannot_see() -> Result<()> {
    let client = client().await?;
    common::install_crd(&client, crd::crd()?).await?;
    let hook = common::start_webhooks_with(Some(client.clone())).await?;
    let ns = TestNamespace::create(&client, "validate").await?;
    let name = format!("llsd-test-{}", ns.name());
    // Removed however the test ends.
    let _validating =
        llsd_test_support::DeleteOnDrop::<ValidatingWebhookConfiguration>::new(name.clone())
            .await?;
    let config: ValidatingWebhookConfiguration = serde_json::from_value(json!({
        "apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingWebhookConfiguration",
        "metadata": {"name": name},
        "webhooks": [common::admission_webhook("validate.llamastack.io", hook.url(VALIDATE_PATH), &hook.ca, ns.name(), &["v1alpha1", "v1alpha2"])]
    }))?;
    let configs: Api<ValidatingWebhookConfiguration> = Api::all(client.clone());
    configs
        .create(&PostParams::default(), &config)
        .await
        .context("registering the webhook")?;
    let result = exercise(&client, ns.name()).await;
    hook.task.abort();
    result
}

/// The create's error text, or None when it was accepted.
async fn create(
    api: &Api<llsd_test_support::kube::api::DynamicObject>,
    version: &str,
    name: &str,
    spec: Value,
) -> Option<String> {
    api.create(&PostParams::default(), &object(version, name, spec))
        .await
        .err()
        .map(|e| e.to_string())
}

async fn exercise(client: &llsd_test_support::kube::Client, ns: &str) -> Result<()> {
    let api = llsd_api(client, ns, "v1alpha2");
    // The configuration reaches the admission chain after a moment: wait for the first denial.
    let unknown = json!({"distribution": {"name": "nope"}});
    let mut err = None;
    for _ in 0..100 {
        if let Some(e) = create(&api, "v1alpha2", "unknown", unknown.clone()).await {
            err = Some(e);
            break;
        }
        let _ = api.delete("unknown", &DeleteParams::default()).await;
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    let err = err.ok_or_else(|| {
        anyhow!("an unknown distribution was never refused: is the webhook called?")
    })?;
    ensure!(
        err.contains(
            "spec.distribution.name: Unknown distribution \"nope\". Available distributions: "
        ),
        "FR-079d: {err}"
    );

    // A CR applied before its Secret is refused with the Secret's name; several problems at once.
    let spec = json!({"distribution": {"name": "starter"},
        "providers": {"inference": [{"id": "vllm", "provider": "vllm", "endpoint": "http://vllm:8000/v1",
                                     "apiKey": {"secretKeyRef": {"name": "vllm-auth", "key": "token"}}}]},
        "resources": {"models": [{"name": "m", "provider": "ghost"}]}});
    let err = create(&api, "v1alpha2", "early", spec.clone())
        .await
        .ok_or_else(|| anyhow!("must be refused"))?;
    ensure!(err.contains("spec.providers.inference[0].apiKey.secretKeyRef.name: Secret \"vllm-auth\" not found in namespace"), "{err}");
    ensure!(
        err.contains("spec.resources.models[0].provider"),
        "E5 in the same answer: {err}"
    );

    let secrets: Api<Secret> = Api::namespaced(client.clone(), ns);
    secrets.create(&PostParams::default(), &serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Secret", "metadata": {"name": "vllm-auth"}, "stringData": {"other": "x"}}))?).await?;
    let mut fixed = spec.clone();
    fixed["resources"]["models"][0]["provider"] = json!("vllm");
    let err = create(&api, "v1alpha2", "nokey", fixed.clone())
        .await
        .ok_or_else(|| anyhow!("a missing key must be refused"))?;
    ensure!(err.contains("spec.providers.inference[0].apiKey.secretKeyRef.key: Key \"token\" not found in Secret \"vllm-auth\""), "{err}");
    secrets.replace("vllm-auth", &PostParams::default(), &serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Secret", "metadata": {"name": "vllm-auth", "resourceVersion": secrets.get("vllm-auth").await?.metadata.resource_version},
        "stringData": {"token": "t"}}))?).await?;
    ensure!(
        create(&api, "v1alpha2", "good", fixed).await.is_none(),
        "a valid CR with its Secret is accepted"
    );

    // overrideConfig needs its ConfigMap, with config.yaml.
    let over = json!({"distribution": {"name": "starter"}, "overrideConfig": {"configMapName": "my-config"}});
    let err = create(&api, "v1alpha2", "override", over.clone())
        .await
        .ok_or_else(|| anyhow!("missing ConfigMap"))?;
    ensure!(
        err.contains("spec.overrideConfig.configMapName: ConfigMap \"my-config\" not found"),
        "{err}"
    );
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), ns);
    let base = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../configs/starter/config.yaml"
    ))?;
    cms.create(&PostParams::default(), &serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "my-config"}, "data": {"config.yaml": base}}))?).await?;
    ensure!(
        create(&api, "v1alpha2", "override", over).await.is_none(),
        "overrideConfig with its ConfigMap is accepted"
    );

    // D14: the CA bundle lives in the resource's namespace.
    let ca = json!({"distribution": {"name": "starter"}, "networking": {"tls": {"caBundle": {"configMapName": "ca", "configMapNamespace": "elsewhere"}}}});
    let err = create(&api, "v1alpha2", "ca", ca)
        .await
        .ok_or_else(|| anyhow!("a foreign CA bundle must be refused"))?;
    ensure!(
        err.contains("spec.networking.tls.caBundle.configMapNamespace"),
        "{err}"
    );

    // D16: an external provider's metadata is read from its image at reconcile time, so
    // admission accepts it; two providers with one ID are still refused here.
    let ext = json!({"distribution": {"name": "starter"},
        "externalProviders": {"inference": [{"providerId": "acme", "image": "quay.io/acme/p:1"}]}});
    ensure!(
        create(&api, "v1alpha2", "ext", ext).await.is_none(),
        "an external provider is accepted at admission"
    );
    let dup = json!({"distribution": {"name": "starter"},
        "externalProviders": {"inference": [{"providerId": "acme", "image": "quay.io/acme/p:1"},
                                           {"providerId": "acme", "image": "quay.io/acme/q:1"}]}});
    let err = create(&api, "v1alpha2", "dup", dup)
        .await
        .ok_or_else(|| anyhow!("a duplicate external provider id must be refused"))?;
    ensure!(
        err.contains("spec.externalProviders.inference[1].providerId"),
        "{err}"
    );

    // v1alpha1 objects are validated too (converted first).
    let v1 = llsd_api(client, ns, "v1alpha1");
    let err = create(
        &v1,
        "v1alpha1",
        "old",
        json!({"server": {"distribution": {"name": "nope"}}}),
    )
    .await
    .ok_or_else(|| anyhow!("an unknown v1alpha1 distribution must be refused"))?;
    ensure!(err.contains("Unknown distribution \"nope\""), "{err}");
    Ok(())
}
