//! FR-025a / D10 retention: of a CR's generated ConfigMaps keep the newest two by creation
//! time (name breaks ties), and never the one the live Deployment mounts.

use k8s_openapi::api::core::v1::ConfigMap;
use kube::ResourceExt;

/// How many generated ConfigMaps survive (current + previous).
pub const KEEP: usize = 2;

/// Names to delete among `maps` (all generated ConfigMaps of one CR, owned by it).
pub fn to_delete(maps: &[ConfigMap], in_use: &[&str]) -> Vec<String> {
    let mut sorted: Vec<&ConfigMap> = maps.iter().collect();
    // Newest first; equal timestamps (1 s resolution) fall back to the name.
    sorted.sort_by(|a, b| {
        b.creation_timestamp()
            .cmp(&a.creation_timestamp())
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
        ConfigMap {
            metadata: kube::api::ObjectMeta {
                name: Some(name.into()),
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
        // Ties on the timestamp: the name decides, deterministically.
        let tied = [cm("x", 5), cm("y", 5), cm("z", 5)];
        assert_eq!(to_delete(&tied, &[]), vec!["x"]);
    }
}
