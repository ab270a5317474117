//! FR-025a / D10 retention: of a CR's generated ConfigMaps keep the newest two by creation
//! time, and never the one the live Deployment mounts. Timestamps have 1 s resolution and
//! several configs can be written within a second; the names are content hashes and say
//! nothing about age, so ties go to the resourceVersion (an immutable ConfigMap keeps the one
//! it was created with; etcd revisions grow), then to the name for a stable order.

use k8s_openapi::api::core::v1::ConfigMap;
use kube::ResourceExt;

/// How many generated ConfigMaps survive (current + previous).
pub const KEEP: usize = 2;

/// Names to delete among `maps` (all generated ConfigMaps of one CR, owned by it).
pub fn to_delete(maps: &[ConfigMap], in_use: &[&str]) -> Vec<String> {
    let mut sorted: Vec<&ConfigMap> = maps.iter().collect();
    let revision = |c: &ConfigMap| {
        c.resource_version()
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    // Newest first.
    sorted.sort_by(|a, b| {
        b.creation_timestamp()
            .cmp(&a.creation_timestamp())
            .then_with(|| revision(b).cmp(&revision(a)))
            .then_with(|| b.name_any().cmp(&a.name_any()))
    });
    sorted
        .into_iter()
        .skip(KEEP)
        .map(|c| c.name_any())
        .filter(|n| !in_use.contains(&n.as_str()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
    use k8s_openapi::jiff::Timestamp;

    fn cm(name: &str, secs: i64) -> ConfigMap {
        cm_rv(name, secs, "")
    }

    fn cm_rv(name: &str, secs: i64, rv: &str) -> ConfigMap {
        ConfigMap {
            metadata: kube::api::ObjectMeta {
                name: Some(name.into()),
                resource_version: (!rv.is_empty()).then(|| rv.to_string()),
                creation_timestamp: Some(Time(Timestamp::from_second(secs).expect("valid"))),
                ..Default::default()
            },
            ..Default::default()
        }
    }

    #[test]
    fn keeps_the_newest_two_and_the_one_in_use() {
        let maps = [cm("a", 1), cm("b", 2), cm("c", 3), cm("d", 4)];
        assert_eq!(to_delete(&maps, &[]), vec!["b", "a"]);
        assert_eq!(to_delete(&maps, &["a"]), vec!["b"]);
        assert!(to_delete(&maps[..2], &[]).is_empty());
        // Ties on the timestamp: the resourceVersion tells the age, not the (hash) name.
        let tied = [
            cm_rv("c0ffee", 5, "900"),
            cm_rv("aaaa", 5, "1000"),
            cm_rv("ffff", 5, "800"),
        ];
        assert_eq!(to_delete(&tied, &[]), vec!["ffff"]);
        // Without revisions the name still gives a stable answer.
        let tied = [cm("x", 5), cm("y", 5), cm("z", 5)];
        assert_eq!(to_delete(&tied, &[]), vec!["x"]);
    }
}
