//! The restricted Pod Security Standard, at pod and container level: shared by the server
//! container and the install init containers, so neither builder depends on the other.

use k8s_openapi::api::core::v1::{
    Capabilities, PodSecurityContext, SeccompProfile, SecurityContext,
};

/// UID/GID the pods run as: non-root, as the restricted Pod Security Standard requires.
pub const RUN_AS_USER: i64 = 1001;

fn runtime_default_seccomp() -> SeccompProfile {
    SeccompProfile {
        type_: "RuntimeDefault".into(),
        ..SeccompProfile::default()
    }
}

/// Restricted Pod Security Standard at pod level.
pub(super) fn pod_security_context() -> PodSecurityContext {
    PodSecurityContext {
        run_as_non_root: Some(true),
        run_as_user: Some(RUN_AS_USER),
        // The storage volume must be writable by the non-root user.
        fs_group: Some(RUN_AS_USER),
        seccomp_profile: Some(runtime_default_seccomp()),
        ..PodSecurityContext::default()
    }
}

/// Restricted Pod Security Standard at container level (the server's and the install init
/// containers').
pub(super) fn container_security_context() -> SecurityContext {
    SecurityContext {
        allow_privilege_escalation: Some(false),
        capabilities: Some(Capabilities {
            drop: Some(vec!["ALL".into()]),
            ..Capabilities::default()
        }),
        run_as_non_root: Some(true),
        seccomp_profile: Some(runtime_default_seccomp()),
        ..SecurityContext::default()
    }
}
