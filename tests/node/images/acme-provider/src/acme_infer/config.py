from typing import Any

from pydantic import Field, HttpUrl

from llama_stack.providers.utils.inference.model_registry import RemoteInferenceProviderConfig


class AcmeInferConfig(RemoteInferenceProviderConfig):
    """Config of remote::acme-infer. `api_key` (inherited, stored as auth_credential) is
    optional: without one, requests carry no Authorization header."""

    base_url: HttpUrl | None = Field(
        default=None,
        description="OpenAI-compatible endpoint, including the /v1 path, e.g. http://acme:9000/v1",
    )
    timeout: float = Field(default=30.0, description="Per-request timeout in seconds.")

    @classmethod
    def sample_run_config(
        cls, base_url: str = "${env.ACME_BASE_URL:=}", api_key: str = "${env.ACME_API_KEY:=}", **kwargs
    ) -> dict[str, Any]:
        return {"base_url": base_url, "api_key": api_key, "timeout": 30}
