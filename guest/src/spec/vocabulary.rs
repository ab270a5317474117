//! API names: the CR's camelCase and config.yaml's snake_case (D8).

/// The provider fields of `spec.providers` (FR-003).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ProviderApi {
    Inference,
    Safety,
    VectorIo,
    ToolRuntime,
    Telemetry,
}

impl ProviderApi {
    pub const ALL: [ProviderApi; 5] = [
        ProviderApi::Inference,
        ProviderApi::Safety,
        ProviderApi::VectorIo,
        ProviderApi::ToolRuntime,
        ProviderApi::Telemetry,
    ];

    /// Spelling in the CR.
    pub fn field(self) -> &'static str {
        match self {
            ProviderApi::Inference => "inference",
            ProviderApi::Safety => "safety",
            ProviderApi::VectorIo => "vectorIo",
            ProviderApi::ToolRuntime => "toolRuntime",
            ProviderApi::Telemetry => "telemetry",
        }
    }

    /// Spelling in config.yaml.
    pub fn config_name(self) -> &'static str {
        self.api().config_name()
    }

    pub fn api(self) -> Api {
        match self {
            ProviderApi::Inference => Api::Inference,
            ProviderApi::Safety => Api::Safety,
            ProviderApi::VectorIo => Api::VectorIo,
            ProviderApi::ToolRuntime => Api::ToolRuntime,
            ProviderApi::Telemetry => Api::Telemetry,
        }
    }

    pub fn from_field(s: &str) -> Option<ProviderApi> {
        ProviderApi::ALL.into_iter().find(|a| a.field() == s)
    }
}

/// Every API name the CR may mention in `disabled` or `externalProviders` (D8).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Api {
    Inference,
    Safety,
    VectorIo,
    ToolRuntime,
    Telemetry,
    Responses,
    Agents,
    Eval,
    PostTraining,
    Datasetio,
    Scoring,
    Files,
    Batches,
    FileProcessors,
}

const TABLE: [(Api, &str, &str); 14] = [
    (Api::Inference, "inference", "inference"),
    (Api::Safety, "safety", "safety"),
    (Api::VectorIo, "vectorIo", "vector_io"),
    (Api::ToolRuntime, "toolRuntime", "tool_runtime"),
    (Api::Telemetry, "telemetry", "telemetry"),
    (Api::Responses, "responses", "responses"),
    (Api::Agents, "agents", "agents"),
    (Api::Eval, "eval", "eval"),
    (Api::PostTraining, "postTraining", "post_training"),
    (Api::Datasetio, "datasetio", "datasetio"),
    (Api::Scoring, "scoring", "scoring"),
    (Api::Files, "files", "files"),
    (Api::Batches, "batches", "batches"),
    (Api::FileProcessors, "fileProcessors", "file_processors"),
];

impl Api {
    pub fn field(self) -> &'static str {
        TABLE
            .iter()
            .find(|(a, _, _)| *a == self)
            .map(|(_, f, _)| *f)
            .unwrap_or("")
    }

    pub fn config_name(self) -> &'static str {
        TABLE
            .iter()
            .find(|(a, _, _)| *a == self)
            .map(|(_, _, c)| *c)
            .unwrap_or("")
    }

    /// Parses the CR spelling; `datasetIo` (spec 001's section name) is accepted too.
    pub fn from_field(s: &str) -> Option<Api> {
        if s == "datasetIo" {
            return Some(Api::Datasetio);
        }
        TABLE.iter().find(|(_, f, _)| *f == s).map(|(a, _, _)| *a)
    }

    /// The CR spellings, for error messages.
    pub fn fields() -> Vec<&'static str> {
        TABLE.iter().map(|(_, f, _)| *f).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn d8_mapping_is_camel_to_snake() {
        assert_eq!(
            Api::from_field("vectorIo").map(Api::config_name),
            Some("vector_io")
        );
        assert_eq!(
            Api::from_field("postTraining").map(Api::config_name),
            Some("post_training")
        );
        assert_eq!(
            Api::from_field("fileProcessors").map(Api::config_name),
            Some("file_processors")
        );
        assert_eq!(Api::from_field("datasetIo"), Some(Api::Datasetio));
        assert_eq!(Api::from_field("vector_io"), None);
        for (api, field, _) in TABLE {
            assert_eq!(Api::from_field(field), Some(api));
            assert_eq!(api.field(), field);
        }
        for p in ProviderApi::ALL {
            assert_eq!(ProviderApi::from_field(p.field()), Some(p));
            assert_eq!(p.api().field(), p.field());
        }
    }
}
