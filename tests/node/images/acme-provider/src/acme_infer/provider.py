from llama_stack_api import Api, ProviderSpec, RemoteProviderSpec


def get_provider_spec() -> ProviderSpec:
    """What llama-stack asks a `module:` provider for (llama_stack/core/distribution.py)."""
    return RemoteProviderSpec(
        api=Api.inference,
        adapter_type="acme-infer",
        provider_type="remote::acme-infer",
        # Installed from the image's wheels by the operator, never by llama-stack.
        pip_packages=[],
        module="acme_infer",
        config_class="acme_infer.config.AcmeInferConfig",
        provider_data_validator="acme_infer.AcmeProviderDataValidator",
        description="acme-infer: OpenAI-compatible inference (test provider of the real-node tests).",
    )
