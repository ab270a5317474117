//! The llama-stack operator: CLI, controller, webhooks and the plugin host.

pub mod api;
pub mod app;
pub mod cli;
pub mod controller;
pub mod oci;
pub mod plugin;
pub mod settings;
pub mod telemetry;
pub mod webhook;
