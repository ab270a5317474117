"""acme-infer: an external llama-stack inference provider (remote::acme-infer) that forwards to
an OpenAI-compatible endpoint. llama-stack imports `acme_infer.provider` for the spec (the
config's `module: acme_infer`), then `get_adapter_impl` below for the instance."""

from pydantic import BaseModel, SecretStr

from .config import AcmeInferConfig

__all__ = ["AcmeInferConfig", "AcmeProviderDataValidator", "get_adapter_impl"]


class AcmeProviderDataValidator(BaseModel):
    """Per-request key: header X-LlamaStack-Provider-Data: {"acme_api_key": "..."}."""

    acme_api_key: SecretStr | None = None


async def get_adapter_impl(config: AcmeInferConfig, _deps):
    # Imported here so that loading the spec does not pull in the OpenAI client.
    from .adapter import AcmeInferAdapter

    if not isinstance(config, AcmeInferConfig):
        raise TypeError(f"acme-infer: unexpected config type {type(config)}")
    impl = AcmeInferAdapter(config=config)
    await impl.initialize()
    return impl
