//! W3C Trace Context: the `traceparent` that lets an operator follow one
//! request, or one message, from the client through the Worker and the
//! session object to the LLM provider and back. Pure.
//!
//! The Worker takes a caller's `traceparent` (or starts a trace) and acts
//! as a span of it; its log lines carry `trace_id`. A `send` frame may
//! carry a `traceparent` of its own, which the assistant's turn joins (or
//! the turn starts a trace); each provider attempt is a child span sent
//! as `traceparent` on the fetch, and the turn's log lines carry the
//! trace id. An invalid header is ignored and a new trace started, as the
//! specification says.

/// One span of a trace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trace {
    /// 32 lowercase hex digits, not all zero.
    trace_id: String,
    /// 16 lowercase hex digits, not all zero: this span.
    span_id: String,
    sampled: bool,
}

fn is_id(s: &str, len: usize) -> bool {
    s.len() == len
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        && s.bytes().any(|b| b != b'0')
}

fn span_id() -> String {
    loop {
        let id = crate::ids::random_hex(8);
        if is_id(&id, 16) {
            return id;
        }
    }
}

impl Trace {
    /// A new trace, sampled.
    pub fn root() -> Trace {
        let trace_id = loop {
            let id = crate::ids::random_hex(16);
            if is_id(&id, 32) {
                break id;
            }
        };
        Trace {
            trace_id,
            span_id: span_id(),
            sampled: true,
        }
    }

    /// The span a `traceparent` header names, if it is valid: version
    /// `00` exactly, or a later version's first four fields.
    pub fn parse(header: &str) -> Option<Trace> {
        let h = header.trim();
        let mut parts = h.splitn(5, '-');
        let version = parts.next()?;
        let trace_id = parts.next()?;
        let parent = parts.next()?;
        let flags = parts.next()?;
        let rest = parts.next();
        let version_ok = version.len() == 2
            && version
                .bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
            && version != "ff";
        let shape_ok = match version {
            "00" => rest.is_none() && flags.len() == 2,
            _ => flags.len() == 2,
        };
        if !version_ok || !shape_ok || !is_id(trace_id, 32) || !is_id(parent, 16) {
            return None;
        }
        if !flags_ok(flags) {
            return None;
        }
        let flags = u8::from_str_radix(flags, 16).ok()?;
        Some(Trace {
            trace_id: trace_id.to_string(),
            span_id: parent.to_string(),
            sampled: flags & 1 == 1,
        })
    }

    /// A span of the same trace below this one.
    pub fn child(&self) -> Trace {
        Trace {
            trace_id: self.trace_id.clone(),
            span_id: span_id(),
            sampled: self.sampled,
        }
    }

    /// The caller's trace continued (a span of our own below theirs), or
    /// a new one.
    pub fn continued(header: Option<&str>) -> Trace {
        header
            .and_then(Trace::parse)
            .map_or_else(Trace::root, |t| t.child())
    }

    /// This span as a `traceparent` header, for a call it makes.
    pub fn header(&self) -> String {
        let flags = if self.sampled { "01" } else { "00" };
        format!("00-{}-{}-{flags}", self.trace_id, self.span_id)
    }

    pub fn trace_id(&self) -> &str {
        &self.trace_id
    }

    pub fn span_id(&self) -> &str {
        &self.span_id
    }
}

fn flags_ok(s: &str) -> bool {
    s.bytes()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
    const S: &str = "00f067aa0ba902b7";

    #[test]
    fn the_specifications_example_parses_and_round_trips() {
        let h = format!("00-{T}-{S}-01");
        let t = Trace::parse(&h).unwrap();
        assert_eq!((t.trace_id(), t.span_id(), t.sampled), (T, S, true));
        assert_eq!(t.header(), h);
        let unsampled = Trace::parse(&format!("00-{T}-{S}-00")).unwrap();
        assert!(!unsampled.sampled);
        assert!(unsampled.header().ends_with("-00"));
    }

    #[test]
    fn invalid_headers_are_refused() {
        for bad in [
            String::new(),
            format!("00-{}-{S}-01", "0".repeat(32)),
            format!("00-{T}-{}-01", "0".repeat(16)),
            format!("00-{}-{S}-01", T.to_uppercase()),
            format!("ff-{T}-{S}-01"),
            format!("00-{T}-{S}-01-extra"),
            format!("00-{T}-{S}-1"),
            format!("00-{T}-{S}-0g"),
            format!("0-{T}-{S}-01"),
            format!("00-{}-{S}-01", &T[1..]),
            "not a header".into(),
        ] {
            assert_eq!(Trace::parse(&bad), None, "{bad:?}");
        }
        // A later version may add fields after the fourth.
        assert!(Trace::parse(&format!("01-{T}-{S}-01-what-comes-next")).is_some());
    }

    #[test]
    fn a_child_keeps_the_trace_and_takes_a_new_span() {
        let parent = Trace::parse(&format!("00-{T}-{S}-01")).unwrap();
        let child = parent.child();
        assert_eq!(child.trace_id(), T);
        assert_ne!(child.span_id(), S);
        assert!(is_id(child.span_id(), 16));
        let cont = Trace::continued(Some(&format!("00-{T}-{S}-01")));
        assert_eq!(cont.trace_id(), T);
        assert_ne!(cont.span_id(), S);
        // Nothing, or junk: a new trace.
        let fresh = Trace::continued(Some("junk"));
        assert_ne!(fresh.trace_id(), T);
        assert!(is_id(fresh.trace_id(), 32) && fresh.sampled);
        assert!(Trace::parse(&fresh.header()).is_some());
        assert_ne!(Trace::root().trace_id(), Trace::root().trace_id());
    }
}
