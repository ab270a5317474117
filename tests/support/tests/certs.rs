//! Issue 6, certificates: the operator issues its webhook CA and serving certificate into a
//! Secret, keeps them while they are fresh, renews them before expiry, and injects the CA
//! into the webhook configurations and the CRD; the real API server then trusts the webhooks.

use std::time::{Duration, SystemTime};

use anyhow::{Context, Result, anyhow, ensure};
use llama_stack_operator::api::crd;
use llama_stack_operator::webhook::certs::{self, CERT_LIFETIME};
use llama_stack_operator::webhook::{MUTATE_PATH, VALIDATE_PATH};
use llsd_test_support::k8s_openapi::api::admissionregistration::v1::{
    MutatingWebhookConfiguration, ValidatingWebhookConfiguration,
};
use llsd_test_support::k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::WebhookClientConfig;
use llsd_test_support::kube::api::{Api, PostParams};
use llsd_test_support::{TestNamespace, client};
use serde_json::json;

mod common;
use common::{llsd_api, object};

#[tokio::test]
async fn issued_renewed_and_injected_certificates_are_trusted_by_the_api_server() -> Result<()> {
    let client = client().await?;
    let ns = TestNamespace::create(&client, "certs").await?;
    let names = vec!["localhost".to_string(), "127.0.0.1".to_string()];
    let now = SystemTime::now();

    let (first, new) = certs::ensure(&client, ns.name(), "webhook-tls", &names, now).await?;
    ensure!(new, "the first call issues");
    let (again, new) = certs::ensure(&client, ns.name(), "webhook-tls", &names, now).await?;
    ensure!(
        !new && again == first,
        "fresh certificates are kept, not reissued"
    );
    let later = now + CERT_LIFETIME - Duration::from_secs(20 * 24 * 3600);
    let (renewed, new) = certs::ensure(&client, ns.name(), "webhook-tls", &names, later).await?;
    ensure!(
        new && renewed.cert_pem != first.cert_pem,
        "renewed within 30 days of expiry"
    );
    ensure!(
        renewed.ca_pem == first.ca_pem,
        "under the same CA: the caBundle the API server holds stays valid"
    );
    let (other, new) = certs::ensure(
        &client,
        ns.name(),
        "webhook-tls",
        &["other.svc".into()],
        later,
    )
    .await?;
    ensure!(
        new && other.cert_pem != renewed.cert_pem,
        "reissued for other names"
    );

    // Serve with the operator's certificate; register the hooks without a CA first.
    // Back to the real clock: the Secret holds certificates for other names, so this issues.
    let (certs_now, new) = certs::ensure(&client, ns.name(), "webhook-tls", &names, now).await?;
    ensure!(new, "names changed back: reissued");
    let hook = common::start_webhooks_tls(
        Some(client.clone()),
        certs_now.ca_pem.clone(),
        &certs_now.cert_pem,
        &certs_now.key_pem,
    )
    .await?;
    let name = format!("llsd-test-{}", ns.name());
    // Removed however the test ends.
    let _mutating =
        llsd_test_support::DeleteOnDrop::<MutatingWebhookConfiguration>::new(name.clone()).await?;
    // Removed however the test ends.
    let _validating =
        llsd_test_support::DeleteOnDrop::<ValidatingWebhookConfiguration>::new(name.clone())
            .await?;
    let mut m = common::admission_webhook(
        "defaults.llamastack.io",
        hook.url(MUTATE_PATH),
        "",
        ns.name(),
        &["v1alpha2"],
    );
    m["clientConfig"]
        .as_object_mut()
        .map(|c| c.remove("caBundle"));
    let mut v = common::admission_webhook(
        "validate.llamastack.io",
        hook.url(VALIDATE_PATH),
        "",
        ns.name(),
        &["v1alpha1", "v1alpha2"],
    );
    v["clientConfig"]
        .as_object_mut()
        .map(|c| c.remove("caBundle"));
    let mutating: Api<MutatingWebhookConfiguration> = Api::all(client.clone());
    let validating: Api<ValidatingWebhookConfiguration> = Api::all(client.clone());
    mutating
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({
        "apiVersion": "admissionregistration.k8s.io/v1", "kind": "MutatingWebhookConfiguration",
        "metadata": {"name": name}, "webhooks": [m]}))?,
        )
        .await?;
    validating
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({
        "apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingWebhookConfiguration",
        "metadata": {"name": name}, "webhooks": [v]}))?,
        )
        .await?;
    common::install_crd(
        &client,
        crd::with_conversion_client(
            crd::crd()?,
            WebhookClientConfig {
                url: Some(hook.url(crd::CONVERSION_PATH)),
                ca_bundle: None,
                service: None,
            },
        ),
    )
    .await?;
    let result = exercise(&client, ns.name(), &certs_now.ca_pem, &name).await;
    common::install_crd(&client, crd::crd()?).await?;
    hook.task.abort();
    result
}

async fn exercise(
    client: &llsd_test_support::kube::Client,
    ns: &str,
    ca: &str,
    name: &str,
) -> Result<()> {
    let api = llsd_api(client, ns, "v1alpha2");
    let short = json!({"distribution": {"name": "starter"}, "networking": {"expose": true}});
    ensure!(
        api.create(
            &PostParams::default(),
            &object("v1alpha2", "before", short.clone())
        )
        .await
        .is_err(),
        "without the CA the API server cannot call the webhooks (failurePolicy Fail)"
    );
    certs::inject(
        client,
        ca,
        name,
        name,
        "llamastackdistributions.llamastack.io",
        None,
    )
    .await
    .context("injecting the CA")?;
    let mut stored = None;
    for _ in 0..100 {
        if let Ok(o) = api
            .create(
                &PostParams::default(),
                &object("v1alpha2", "after", short.clone()),
            )
            .await
        {
            stored = Some(o);
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let stored = stored
        .ok_or_else(|| anyhow!("the webhooks were never trusted after the CA was injected"))?;
    ensure!(
        stored.data["spec"]["networking"]["expose"] == json!({"enabled": true}),
        "mutated: {}",
        stored.data["spec"]
    );
    // Conversion through the injected CA: a v1alpha1 object is stored and reads back whole.
    // The CRD's new caBundle reaches the API server's conversion client a little later than
    // the webhook configurations' did, so creating is retried too.
    let v1 = llsd_api(client, ns, "v1alpha1");
    let old = object(
        "v1alpha1",
        "old",
        json!({"server": {"distribution": {"name": "starter"}, "workers": 2}}),
    );
    let mut whole = false;
    for _ in 0..150 {
        let _ = v1.create(&PostParams::default(), &old).await;
        if v1
            .get("old")
            .await
            .is_ok_and(|o| o.data["spec"]["server"]["workers"] == json!(2))
        {
            whole = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    ensure!(whole, "conversion through the injected CA");
    Ok(())
}
