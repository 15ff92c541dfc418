//! A turn's budget around its reply: reserve first, ask nobody when it is
//! refused, give back what a turn that stored nothing reserved.

use super::*;

/// The budget's store and the record, scripted: a day with `left` tokens.
struct Budgeted {
    io: Script,
    grant: bool,
    reserved: RefCell<Vec<Reservation>>,
    begun: Cell<bool>,
    released: RefCell<Vec<Charge>>,
    recorded: RefCell<Vec<Outcome>>,
    /// What each recorded outcome was charged as.
    charged: RefCell<Vec<Charge>>,
}

impl Budgeted {
    fn new(answers: Vec<Answer>, grant: bool) -> Budgeted {
        Budgeted {
            io: Script::new(answers),
            grant,
            reserved: Default::default(),
            begun: Cell::new(false),
            released: Default::default(),
            recorded: Default::default(),
            charged: Default::default(),
        }
    }
}

impl ReplyIo for Budgeted {
    type Body = <Script as ReplyIo>::Body;
    fn now_ms(&self) -> i64 {
        self.io.now_ms()
    }
    fn random_unit(&self) -> f64 {
        0.5
    }
    async fn sleep(&self, ms: u64) {
        self.io.sleep(ms).await
    }
    async fn open(&self, p: &Provider, r: &Request, w: u64) -> Result<Self::Body, Refused> {
        assert!(
            self.begun.get(),
            "a provider asked before the reply was announced"
        );
        self.io.open(p, r, w).await
    }
    async fn read(&self, b: &mut Self::Body, w: u64) -> Read {
        self.io.read(b, w).await
    }
    fn relay(&self, t: &str) {
        self.io.relay(t)
    }
    fn stopped(&self) -> bool {
        self.io.stopped()
    }
    fn attempt_failed(&self, p: &Provider, n: u32, c: &'static str) {
        self.io.attempt_failed(p, n, c)
    }
}

impl TurnIo for Budgeted {
    async fn reserve(&self, r: &Reservation) -> Result<Option<Charge>, AppError> {
        self.reserved.borrow_mut().push(r.clone());
        Ok(self.grant.then(|| Charge {
            user: r.user.clone(),
            day: "2026-12-03".into(),
            reserved: r.tokens,
            reserved_nanos: r.nanos(),
            profile: r.profile.clone(),
            profile_held: r.profile_budget.limits(),
        }))
    }
    async fn begin(&self, _: &Charge) -> Result<(), AppError> {
        self.begun.set(true);
        Ok(())
    }
    async fn record(&self, outcome: Outcome, c: &Charge, _: Spent) -> Result<bool, AppError> {
        self.charged.borrow_mut().push(c.clone());
        // As the session object does: a reply with no text stores nothing.
        let stored = !self.io.relayed.borrow().is_empty();
        self.recorded.borrow_mut().push(outcome);
        Ok(stored)
    }
    async fn release(&self, c: &Charge) {
        self.released.borrow_mut().push(c.clone());
    }
    async fn approvals(&self, _: &[ToolCall], _: u64) -> Vec<Decision> {
        unreachable!("these turns offer no functions")
    }
    async fn run_tools(&self, _: &[ToolCall]) -> Vec<ToolResult> {
        unreachable!("these turns offer no functions")
    }
    async fn record_results(&self, _: &[ToolResult]) -> Result<(), AppError> {
        unreachable!("these turns offer no functions")
    }
}

fn budgeted_assistant() -> Assistant {
    let mut a = assistant(vec![provider(Kind::Openai, "m1")]);
    a.daily_token_budget = 10_000;
    a.prices = crate::llm::price::PriceTable::parse(
        r#"[{"provider":"openai","model":"m1","input":1,"output":2}]"#,
    )
    .unwrap();
    a.daily_cost_budget = Some(crate::llm::price::Usd(1_000_000));
    a
}

#[test]
fn a_turn_reserves_its_most_before_asking_and_keeps_it_when_stored() {
    let a = budgeted_assistant();
    let io = Budgeted::new(vec![Answer::Stream(openai(&["ok"], true))], true);
    let end = block_on(turn(&io, &a, &prompt(), "ann", 1_000));
    assert_eq!(end, Ok(TurnEnd::Ran { stored: true }));
    let r = io.reserved.borrow()[0].clone();
    // The prompt's estimate plus the longest reply (256), in tokens and at
    // the model's prices (1 and 2 $ per million: 1 and 2 µ$ a token).
    let prompt_tokens = crate::llm::budget::turn_estimate(&prompt(), 0);
    assert_eq!(r.tokens, prompt_tokens + 256);
    assert_eq!(r.cost.nanos(), prompt_tokens * 1_000 + 256 * 2_000);
    assert_eq!((r.user.as_str(), r.token_budget), ("ann", 10_000));
    assert!(
        io.released.borrow().is_empty(),
        "a stored reply settles its reservation"
    );
    assert!(matches!(io.recorded.borrow()[0], Outcome::Reply { .. }));
}

#[test]
fn a_spent_budget_asks_no_provider() {
    let a = budgeted_assistant();
    let io = Budgeted::new(vec![], false);
    let end = block_on(turn(&io, &a, &prompt(), "ann", 1_000));
    assert_eq!(end, Ok(TurnEnd::QuotaExceeded));
    assert!(io.io.opened.borrow().is_empty());
    assert!(!io.begun.get());
}

#[test]
fn a_turn_that_stores_nothing_gives_its_reservation_back() {
    let mut a = budgeted_assistant();
    a.max_retries = 0;
    let io = Budgeted::new(vec![status(500, None)], true);
    let end = block_on(turn(&io, &a, &prompt(), "ann", 1_000));
    assert_eq!(end, Ok(TurnEnd::Ran { stored: false }));
    let released = io.released.borrow();
    assert_eq!(released.len(), 1);
    assert_eq!(released[0].reserved, io.reserved.borrow()[0].tokens);
    assert_eq!(
        io.recorded.borrow()[0],
        Outcome::Failed {
            code: "provider_unavailable"
        }
    );
}

#[test]
fn without_budgets_nothing_is_reserved_or_released() {
    let a = assistant(vec![provider(Kind::Openai, "m1")]);
    let io = Budgeted::new(
        vec![status(500, None), status(500, None), status(500, None)],
        true,
    );
    let end = block_on(turn(&io, &a, &prompt(), "ann", 1_000));
    assert_eq!(end, Ok(TurnEnd::Ran { stored: false }));
    assert!(io.reserved.borrow().is_empty());
    assert!(io.released.borrow().is_empty());
}

#[test]
fn a_profiles_budget_alone_reserves_and_names_the_profile() {
    let mut a = assistant(vec![provider(Kind::Openai, "m1")]);
    a.profile = "sales".into();
    a.profile_budget = crate::llm::config::Budget {
        tokens: 0,
        cost: Some(crate::llm::price::Usd(5_000_000)),
    };
    a.prices = crate::llm::price::PriceTable::parse(
        r#"[{"provider":"openai","model":"m1","input":1,"output":2}]"#,
    )
    .unwrap();
    let io = Budgeted::new(vec![Answer::Stream(openai(&["ok"], true))], true);
    let end = block_on(turn(&io, &a, &prompt(), "ann", 1_000));
    assert_eq!(end, Ok(TurnEnd::Ran { stored: true }));
    let r = io.reserved.borrow()[0].clone();
    // No budget of the user's: the money is reserved for the profile's.
    assert_eq!((r.token_budget, r.cost_budget), (0, None));
    assert_eq!(r.profile, "sales");
    assert!(r.nanos() > 0 && r.nanos() == r.cost.nanos());
    // Without any budget in money, no money is reserved.
    a.profile_budget.cost = None;
    a.profile_budget.tokens = 100;
    let io = Budgeted::new(vec![Answer::Stream(openai(&["ok"], true))], true);
    block_on(turn(&io, &a, &prompt(), "ann", 1_000)).unwrap();
    assert_eq!(io.reserved.borrow()[0].nanos(), 0);
    // Unbudgeted turns are still charged under their profile.
    a.profile_budget.tokens = 0;
    let io = Budgeted::new(vec![Answer::Stream(openai(&["ok"], true))], true);
    block_on(turn(&io, &a, &prompt(), "ann", 1_000)).unwrap();
    assert!(io.reserved.borrow().is_empty());
    let c = io.charged.borrow()[0].clone();
    assert_eq!(
        (c.profile.as_str(), c.profile_held, c.holds()),
        ("sales", false, false)
    );
}
