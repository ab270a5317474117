//! The llama-stack operator: CLI today; controller, webhooks and plugin host in later modules.

pub mod api;
pub mod cli;
pub mod plugin;
pub mod webhook;
