//! The simulated contextualization of the Dummy cloud: IM-like progress lines, then
//! success once the configured delay has passed.

/// Lines written when a simulated run starts, as IM's ConfManager writes them while
/// it waits for a master VM.
pub const START_LINES: [&str; 3] = [
    "Select master VM",
    "Wait master VM to boot",
    "Wait master VM to have the SSH active.",
];

/// Lines written when a simulated run ends, as IM writes them once Ansible ran.
pub const FINISH_LINES: [&str; 5] = [
    "Creating and copying Ansible playbook files",
    "Performing preliminary steps to configure Ansible.",
    "Configure Ansible in the master VM.",
    "Ansible successfully configured in the master VM.",
    "Copying YAML, hosts and inventory files.",
];

/// The delay of a simulated run when none is configured.
pub const DEFAULT_DELAY_MS: u64 = 2_000;

/// How long is left of a run that began at `started_at_ms` and lasts `duration_ms`.
pub fn remaining_ms(started_at_ms: i64, duration_ms: u64, now_ms: i64) -> u64 {
    let deadline = started_at_ms.saturating_add(duration_ms as i64);
    deadline.saturating_sub(now_ms).max(0) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remaining_time_never_goes_negative() {
        assert_eq!(remaining_ms(1_000, 2_000, 1_500), 1_500);
        assert_eq!(remaining_ms(1_000, 2_000, 9_000), 0);
    }
}
