//! An incremental Server-Sent Events parser (WHATWG HTML §9.2). Pure.
//!
//! Bytes arrive in arbitrary chunks from a streaming fetch; a chunk may end
//! in the middle of a line, a CRLF pair, or a multi-byte UTF-8 character.
//! The parser buffers only the unfinished line, so memory stays bounded by
//! the longest line.

/// One dispatched event.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Event {
    /// The `event:` field; None means the default type, "message".
    pub event: Option<String>,
    /// The `data:` lines joined with `\n`.
    pub data: String,
    pub id: Option<String>,
}

#[derive(Debug, Default)]
pub struct Parser {
    line: Vec<u8>,
    /// The previous chunk ended with CR: a LF at the start of the next one
    /// belongs to the same line break.
    after_cr: bool,
    event: Option<String>,
    data: String,
    has_data: bool,
    id: Option<String>,
    /// Longest line accepted; longer ones are an error, not a memory leak.
    max_line: usize,
}

/// The stream broke the parser's bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LineTooLong;

impl Parser {
    pub fn new(max_line: usize) -> Self {
        Parser {
            max_line,
            ..Default::default()
        }
    }

    /// Feeds a chunk; returns the events it completed, in order.
    pub fn feed(&mut self, chunk: &[u8]) -> Result<Vec<Event>, LineTooLong> {
        let mut out = Vec::new();
        for &b in chunk {
            if self.after_cr {
                self.after_cr = false;
                if b == b'\n' {
                    continue;
                }
            }
            match b {
                b'\n' => self.end_line(&mut out),
                b'\r' => {
                    self.after_cr = true;
                    self.end_line(&mut out);
                }
                _ => {
                    if self.line.len() >= self.max_line {
                        return Err(LineTooLong);
                    }
                    self.line.push(b);
                }
            }
        }
        Ok(out)
    }

    fn end_line(&mut self, out: &mut Vec<Event>) {
        let line = std::mem::take(&mut self.line);
        if line.is_empty() {
            self.dispatch(out);
            return;
        }
        let line = String::from_utf8_lossy(&line);
        if line.starts_with(':') {
            return; // a comment, e.g. a keep-alive
        }
        let (field, value) = match line.split_once(':') {
            Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
            None => (line.as_ref(), ""),
        };
        match field {
            "data" => {
                if self.has_data {
                    self.data.push('\n');
                }
                self.data.push_str(value);
                self.has_data = true;
            }
            "event" => self.event = Some(value.to_string()),
            "id" if !value.contains('\0') => self.id = Some(value.to_string()),
            _ => {} // `retry` and unknown fields do not concern a one-shot client
        }
    }

    fn dispatch(&mut self, out: &mut Vec<Event>) {
        let event = self.event.take();
        if !self.has_data {
            return;
        }
        self.has_data = false;
        out.push(Event {
            event,
            data: std::mem::take(&mut self.data),
            id: self.id.clone(),
        });
    }
}

#[cfg(test)]
fn all(input: &[u8]) -> Vec<Event> {
    Parser::new(1 << 20).feed(input).unwrap()
}

/// Test support: feeding the input split at every possible point gives the same events.
#[cfg(test)]
pub fn at_every_split(input: &[u8]) -> Vec<Event> {
    let whole = all(input);
    for i in 0..=input.len() {
        let mut p = Parser::new(1 << 20);
        let mut got = p.feed(&input[..i]).unwrap();
        got.extend(p.feed(&input[i..]).unwrap());
        assert_eq!(got, whole, "split at {i}");
    }
    // And byte by byte.
    let mut p = Parser::new(1 << 20);
    let mut got = Vec::new();
    for b in input {
        got.extend(p.feed(std::slice::from_ref(b)).unwrap());
    }
    assert_eq!(got, whole, "byte by byte");
    whole
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(input: &[u8]) -> Vec<Event> {
        super::all(input)
    }

    fn ev(event: Option<&str>, data: &str) -> Event {
        Event {
            event: event.map(String::from),
            data: data.into(),
            id: None,
        }
    }

    #[test]
    fn basic_events_comments_and_multiline_data() {
        let input =
            b": keep-alive\n\ndata: one\n\nevent: delta\ndata: two\ndata:  three\n\ndata\n\n";
        assert_eq!(
            at_every_split(input),
            vec![
                ev(None, "one"),
                ev(Some("delta"), "two\n three"),
                ev(None, "")
            ]
        );
    }

    #[test]
    fn every_line_ending_and_split_crlf() {
        let input = b"data: a\r\n\r\ndata: b\r\rdata: c\n\n";
        assert_eq!(
            at_every_split(input),
            vec![ev(None, "a"), ev(None, "b"), ev(None, "c")]
        );
    }

    #[test]
    fn multibyte_characters_split_across_chunks() {
        let input = "data: héllo 👋 wörld\n\n".as_bytes();
        assert_eq!(at_every_split(input), vec![ev(None, "héllo 👋 wörld")]);
    }

    #[test]
    fn an_unfinished_event_is_not_dispatched() {
        assert_eq!(all(b"data: partial\n"), vec![]);
        assert_eq!(all(b"event: x\n\n"), vec![], "no data, nothing to dispatch");
    }

    #[test]
    fn ids_are_kept_and_the_event_type_resets() {
        let got = all(b"id: 7\nevent: a\ndata: 1\n\ndata: 2\n\n");
        assert_eq!(got[0].id.as_deref(), Some("7"));
        assert_eq!(got[1].event, None);
        assert_eq!(got[1].id.as_deref(), Some("7"));
    }

    #[test]
    fn overlong_lines_are_an_error() {
        let mut p = Parser::new(8);
        assert_eq!(p.feed(b"data: 123456789"), Err(LineTooLong));
    }
}
