from typing import Any

from llama_stack.log import get_logger
from llama_stack.providers.utils.inference.openai_mixin import OpenAIMixin

from .config import AcmeInferConfig

log = get_logger(name=__name__, category="inference::acme-infer")


class AcmeInferAdapter(OpenAIMixin):
    """Models, chat completions, completions and embeddings: llama-stack's own OpenAIMixin,
    pointed at config.base_url."""

    config: AcmeInferConfig

    provider_data_api_key_field: str = "acme_api_key"

    def get_api_key(self) -> str | None:
        if self.config.auth_credential is not None and self.config.auth_credential.get_secret_value():
            return self.config.auth_credential.get_secret_value()
        # The OpenAI client insists on a key; a placeholder, as remote::vllm sends without one.
        return "NO KEY REQUIRED"

    def get_base_url(self) -> str:
        return str(self.config.base_url)

    def get_extra_client_params(self) -> dict[str, Any]:
        return {"timeout": self.config.timeout}

    async def initialize(self) -> None:
        if not self.config.base_url:
            raise ValueError("acme-infer: config.base_url is required (an OpenAI-compatible URL ending in /v1)")
        log.info(f"acme-infer: forwarding to {self.config.base_url}")
