//! The `outports` network feature: `22`, `80-8080`, `8899/tcp-8899/tcp`, `1:10/udp`,
//! optionally prefixed by a CIDR and `-`, comma separated. Reproduces IM's regular
//! expression (including its quirks: the dots of the CIDR match any character, `\d`
//! matches any Unicode digit, a final newline is allowed) and its protocol check.

use super::pytext::decimal_digit;

/// Whether IM accepts the `outports` value.
pub fn is_valid_outports(value: &str) -> bool {
    value.split(',').all(is_valid_port)
}

fn is_valid_port(part: &str) -> bool {
    // Python's `$` also matches just before a final newline.
    let chars: Vec<char> = part.chars().collect();
    let end = if chars.last() == Some(&'\n') {
        chars.len() - 1
    } else {
        chars.len()
    };
    let ends = |at: usize| at == chars.len() || at == end;
    let mut starts = cidr_prefix_ends(&chars);
    starts.push(0);
    for start in starts {
        if let Some((local, remote)) = port_mapping(&chars, start, &ends) {
            let local = local.unwrap_or("tcp");
            let remote = remote.unwrap_or(local);
            return local == remote;
        }
    }
    false
}

fn digits(chars: &[char], at: usize) -> usize {
    chars[at.min(chars.len())..]
        .iter()
        .take_while(|c| decimal_digit(**c).is_some())
        .count()
}

/// The positions right after every way `\d{1,3}.\d{1,3}.\d{1,3}.\d{1,3}/\d{1,2}-` can
/// match at the start, most greedy first (the regular expression tries that first).
fn cidr_prefix_ends(chars: &[char]) -> Vec<usize> {
    fn walk(chars: &[char], at: usize, step: usize, out: &mut Vec<usize>) {
        // Steps: 4 address parts (digits then any char, the last one then '/'), mask, '-'.
        if step == 4 {
            let available = digits(chars, at).min(2);
            for count in (1..=available).rev() {
                if chars.get(at + count) == Some(&'-') {
                    out.push(at + count + 1);
                }
            }
            return;
        }
        let available = digits(chars, at).min(3);
        for count in (1..=available).rev() {
            let next = at + count;
            let separator_ok = if step == 3 {
                chars.get(next) == Some(&'/')
            } else {
                chars.get(next).is_some_and(|c| *c != '\n')
            };
            if separator_ok {
                walk(chars, next + 1, step + 1, out);
            }
        }
    }
    let mut out = Vec::new();
    walk(chars, 0, 0, &mut out);
    out
}

/// `port[:port][/proto][-port[:port][/proto]]` up to the end; the two protocols.
fn port_mapping<'a>(
    chars: &[char],
    start: usize,
    ends: &dyn Fn(usize) -> bool,
) -> Option<(Option<&'a str>, Option<&'a str>)> {
    let (after_local, local) = port_spec(chars, start)?;
    if ends(after_local) {
        return Some((local, None));
    }
    if chars.get(after_local) != Some(&'-') {
        return None;
    }
    let (after_remote, remote) = port_spec(chars, after_local + 1)?;
    ends(after_remote).then_some((local, remote))
}

fn port_spec<'a>(chars: &[char], start: usize) -> Option<(usize, Option<&'a str>)> {
    let count = digits(chars, start);
    if count == 0 {
        return None;
    }
    let mut at = start + count;
    if chars.get(at) == Some(&':') {
        let range = digits(chars, at + 1);
        if range > 0 {
            at += 1 + range;
        }
    }
    for protocol in ["tcp", "udp", "icmp"] {
        let slice = chars.get(at..at + 1 + protocol.len());
        let matches =
            slice.is_some_and(|s| s[0] == '/' && s[1..].iter().copied().eq(protocol.chars()));
        if matches {
            return Some((at + 1 + protocol.len(), Some(protocol)));
        }
    }
    Some((at, None))
}

#[cfg(test)]
mod tests {
    use super::is_valid_outports;

    #[test]
    fn im_formats_are_accepted() {
        for value in [
            "22",
            "8899/tcp-8899/tcp,22/tcp-22/tcp",
            "8899/tcp-8899,22/tcp-22",
            "0.0.0.0/0-8899-8899,22-22",
            "8899/tcp,22/udp",
            "1:10/tcp,9:22/udp",
            "22,80-8080,8899/tcp-8899/tcp,1:10/udp,0.0.0.0/0-22",
            "22\n",
        ] {
            assert!(is_valid_outports(value), "{value}");
        }
    }

    #[test]
    fn malformed_outports_are_refused() {
        for value in ["22-", "", "a", "22/tcp-22/udp", "22,", "22/sctp", "1:"] {
            assert!(!is_valid_outports(value), "{value}");
        }
    }
}
