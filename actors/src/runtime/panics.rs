//! What both actors tell a caller when a command panicked.

/// What a client is told about a panic: a fixed text. Clients see this message (it
/// may end up in an IM error such as `Error adding VMs: …`), so the panic's own
/// text, which can name internals, goes to the log only.
pub(crate) fn panic_message(panic: &Box<dyn std::any::Any + Send>) -> String {
    let detail = if let Some(text) = panic.downcast_ref::<&str>() {
        (*text).to_string()
    } else if let Some(text) = panic.downcast_ref::<String>() {
        text.clone()
    } else {
        String::new()
    };
    tracing::error!(%detail, "a command panicked");
    "internal error".to_string()
}
