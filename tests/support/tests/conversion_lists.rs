//! Issue 19 (large input): a client that lists CRs at the version they are not stored in has
//! each of them converted by the operator's webhook. A list of 4 MB (160 CRs with a 25 KB
//! annotation each, twice the 2 MB body limit of an axum `Json` extractor, in case the API
//! server sends them in one ConversionReview) read at v1alpha1 must come back whole.
//!
//! A binary of its own: it points the cluster-wide CRD's conversion at one operator process
//! (and restores the plain CRD at the end).

use anyhow::{Context, Result, ensure};
use llsd_test_support::kube::api::{ListParams, PostParams};
use llsd_test_support::{TestNamespace, client};
use serde_json::json;

mod common;
use common::cr::wait_converting;
use common::{llsd_api, object};

/// CRs in the list, and the size of the annotation each carries.
const COUNT: usize = 160;
const ANNOTATION_BYTES: usize = 25 * 1024;

#[tokio::test]
async fn a_list_of_4_mb_is_converted_whole() -> Result<()> {
    let client = client().await?;
    let ns = TestNamespace::create(&client, "conv-list").await?;
    let result = async {
        let op = common::operator::start_converting(&client, ns.name(), &[]).await?;
        // The CRs live in a namespace the operator does not reconcile: only its webhook
        // serves them.
        let data = TestNamespace::create(&client, "conv-list-data").await?;
        let v1 = llsd_api(&client, data.name(), "v1alpha1");
        wait_converting(&v1).await.with_context(|| op.log_text())?;
        let v2 = llsd_api(&client, data.name(), "v1alpha2");
        let filler = "x".repeat(ANNOTATION_BYTES);
        for i in 0..COUNT {
            let mut cr = object(
                "v1alpha2",
                &format!("big-{i}"),
                json!({"distribution": {"name": "starter"}}),
            );
            cr.metadata.annotations =
                Some([("example.com/filler".to_string(), filler.clone())].into());
            v2.create(&PostParams::default(), &cr).await?;
        }
        let listed = v1
            .list(&ListParams::default())
            .await
            .with_context(|| format!("listing {COUNT} CRs at v1alpha1\n{}", op.log_text()))?;
        ensure!(
            listed.items.len() == COUNT
                && listed.items.iter().all(|o| o
                    .types
                    .as_ref()
                    .is_some_and(|t| t.api_version == "llamastack.io/v1alpha1")),
            "{} of {COUNT} CRs came back at v1alpha1",
            listed.items.len()
        );
        data.delete().await
    }
    .await;
    common::operator::finish_converting(&client, ns, result).await
}
