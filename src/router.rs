//! The route table: the only place that knows URLs, and who may call them.
//!
//! [`ROUTES`] has one line per route: method, path pattern, endpoint, access
//! level and the name logs and metrics use. Resolution, 405s and their
//! `Allow` header, the words a logged path may keep, and the access check
//! are all read from it (pure, tested natively); dispatch calls one handler
//! per endpoint, after `api::access::admit` has checked the route's
//! [`Access`] once. The end-to-end authorization test walks the same table
//! (`tests/access.rs`), so a route cannot ship without an access rule.

use crate::error::AppError;
use crate::ids::{is_valid_user_id, percent_decode, SessionId};
use serde::{Deserialize, Serialize};

/// The bundled pages whose headers the Worker sets (see `api::pages`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Page {
    Chat,
    Admin,
    /// The embeddable widget's panel, framed by `/widget.js` on a
    /// product's pages.
    Widget,
}

/// Who may call a route. Dispatch checks it before the handler runs; for
/// the session levels the session object decides from its own log (the
/// authority on membership), with the level the route carries in the
/// call's [`crate::contract::Caller`].
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Access {
    /// Anyone: pages, probes, the client configuration, preflights.
    Public,
    /// Anyone, in the development environment only; 404 elsewhere.
    Dev,
    /// A bearer holding `METRICS_TOKEN`, or an admin.
    Metrics,
    /// Any signed-in user; 401 without a valid token.
    User,
    /// The session's owner, a member or an admin; 404 to anyone else, so a
    /// session's existence is never revealed.
    Member,
    /// The session's owner or an admin; 404 to members and anyone else.
    Owner,
    /// The configured admin role; 404 to everyone else: admin routes do
    /// not reveal themselves.
    Admin,
    /// The product's backend: a bearer holding `SERVICE_TOKEN`, or a token
    /// with `SERVICE_ROLE`; 404 to everyone else. It reaches every session.
    Service,
    /// Whoever holds a URL signed by an earlier call (`{token}`: an upload
    /// or download link, `crate::attachment`); the handler checks the
    /// signature and answers 404 to anything this deployment did not sign.
    Signed,
}

impl Access {
    /// Whether a caller with `role` in a session (None: no role at all)
    /// and the admin flag `admin` passes this level there. Levels that are
    /// not about a session still need a role: being signed in is not
    /// enough to see a session.
    pub fn admits(self, role: Option<crate::contract::Role>, admin: bool) -> bool {
        match self {
            Access::Admin | Access::Service => admin,
            Access::Owner => role.is_some_and(|r| r.may_manage()),
            _ => role.is_some(),
        }
    }
}

/// What a route does; dispatch maps each to its handler.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    /// A CORS preflight (`OPTIONS`) for any known path.
    Preflight,
    Page(Page),
    Healthz,
    Readyz,
    Metrics,
    ClientConfig,
    DevToken,
    /// An anonymous visitor's identity (`crate::auth::visitor`).
    Visitors,
    /// The product's backend links a visitor's conversations to an account.
    LinkVisitor,
    /// Development only: make a handler panic (see `api::dev::fault`).
    DevFault,
    CreateSession,
    ListSessions,
    GetSession,
    DeleteSession,
    History,
    Members,
    AddMember,
    RemoveMember,
    SessionSocket,
    CreateTicket,
    Reencrypt,
    AdminSessions,
    /// The admin audit trail (`crate::audit`).
    Audit,
    /// The cost ledger's report (`crate::ledger`).
    Usage,
    AdminSession,
    /// A support desk action on a session (`crate::desk`).
    Desk(DeskVerb),
    /// A single-use ticket for the inbox socket.
    InboxTicket,
    /// The agents' live inbox: a socket on the desk object (`crate::inbox`).
    InboxSocket,
    Replication,
    /// Webhook endpoints (`crate::webhooks`), one route each.
    Webhooks(WebhookVerb),
    /// Assistant profiles (`crate::llm::profile`).
    Profiles(ProfileVerb),
    /// The product backend's API (`crate::service`).
    Service(ServiceVerb),
    /// A link's preview, fetched by the Worker (`crate::preview`).
    LinkPreview,
    Search,
    /// Attachments (`crate::attachment`): an upload slot, a download link
    /// for a member, and the signed URLs they lead to.
    AttachmentSlot,
    AttachmentLink,
    Upload,
    Download,
    /// Reports, removals and sanctions (`crate::moderation`).
    Moderation(crate::moderation::Verb),
}

/// What the service routes do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServiceVerb {
    /// Post a message as the system, a bot or an agent.
    Post,
    /// Set the desk status.
    Status,
    /// The whole transcript, as JSON or text.
    Transcript,
}

/// What the webhook admin routes do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WebhookVerb {
    Create,
    List,
    Get,
    Update,
    Delete,
    /// The endpoint's delivery log.
    Deliveries,
}

/// What the assistant profile routes do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProfileVerb {
    List,
    Get,
    /// Creates or replaces one.
    Put,
    Delete,
}

/// The desk actions the admin API offers, one route each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeskVerb {
    Escalate,
    Claim,
    /// Claim, under its older name.
    Takeover,
    /// Body `{"to": "<agent user id>"}`.
    Transfer,
    Resolve,
    Release,
    /// Ends the session for good (read-only), as the idle close does.
    Close,
}

impl Endpoint {
    /// Whether the per-IP HTTP rate limit applies: everything but the
    /// probes, the scrape and the pages, which infrastructure and browsers
    /// call on a schedule.
    pub fn rate_limited(self) -> bool {
        !matches!(
            self,
            Endpoint::Healthz
                | Endpoint::Readyz
                | Endpoint::Metrics
                | Endpoint::Preflight
                | Endpoint::Page(_)
        )
    }
}

/// One line of the route table.
#[derive(Debug, PartialEq, Eq)]
pub struct Spec {
    /// `GET` (which answers `HEAD` too), `POST`, `PUT`, `PATCH` or `DELETE`.
    pub method: &'static str,
    /// Segments after the leading `/`; `{session}` is a session id,
    /// `{user}` a percent-encoded user id, `{webhook}` an endpoint id,
    /// `{profile}` an assistant profile's name,
    /// `{attachment}` an attachment id and `{token}` a signed token.
    pub path: &'static str,
    pub endpoint: Endpoint,
    pub access: Access,
    /// The route's name in logs and metrics.
    pub name: &'static str,
}

const fn route(
    method: &'static str,
    path: &'static str,
    endpoint: Endpoint,
    access: Access,
    name: &'static str,
) -> Spec {
    Spec {
        method,
        path,
        endpoint,
        access,
        name,
    }
}

/// Every route Confab serves.
#[rustfmt::skip]
pub static ROUTES: &[Spec] = {
    use Access::*;
    use Endpoint as E;
    const GET: &str = "GET";
    const POST: &str = "POST";
    const DELETE: &str = "DELETE";
    const PATCH: &str = "PATCH";
    const PUT: &str = "PUT";
    use WebhookVerb as W;
    use ProfileVerb as P;
    use ServiceVerb as S;
    use crate::moderation::Verb as M;
    &[
        route(GET, "/", E::Page(Page::Chat), Public, "page.chat"),
        route(GET, "/index.html", E::Page(Page::Chat), Public, "page.chat"),
        route(GET, "/admin", E::Page(Page::Admin), Public, "page.admin"),
        route(GET, "/admin.html", E::Page(Page::Admin), Public, "page.admin"),
        route(GET, "/widget", E::Page(Page::Widget), Public, "page.widget"),
        route(GET, "/widget.html", E::Page(Page::Widget), Public, "page.widget"),
        route(GET, "/healthz", E::Healthz, Public, "healthz"),
        route(GET, "/readyz", E::Readyz, Public, "readyz"),
        route(GET, "/metrics", E::Metrics, Metrics, "metrics"),
        route(GET, "/v1/client-config", E::ClientConfig, Public, "client_config"),
        route(POST, "/v1/dev/token", E::DevToken, Dev, "dev.token"),
        route(POST, "/v1/dev/fault", E::DevFault, Dev, "dev.fault"),
        route(POST, "/v1/visitors", E::Visitors, Public, "visitors.create"),
        route(POST, "/v1/sessions", E::CreateSession, User, "sessions.create"),
        route(GET, "/v1/sessions", E::ListSessions, User, "sessions.list"),
        route(GET, "/v1/sessions/{session}", E::GetSession, Member, "sessions.get"),
        route(DELETE, "/v1/sessions/{session}", E::DeleteSession, Owner, "sessions.delete"),
        route(GET, "/v1/sessions/{session}/messages", E::History, Member, "messages.history"),
        route(GET, "/v1/sessions/{session}/members", E::Members, Owner, "members.list"),
        route(POST, "/v1/sessions/{session}/members", E::AddMember, Owner, "members.add"),
        route(DELETE, "/v1/sessions/{session}/members/{user}", E::RemoveMember, Owner, "members.remove"),
        route(GET, "/v1/sessions/{session}/ws", E::SessionSocket, Member, "sessions.ws"),
        route(POST, "/v1/sessions/{session}/tickets", E::CreateTicket, Member, "tickets.create"),
        route(GET, "/v1/previews", E::LinkPreview, User, "previews.get"),
        route(GET, "/v1/search", E::Search, User, "search.get"),
        route(POST, "/v1/sessions/{session}/attachments", E::AttachmentSlot, Member, "attachments.slot"),
        route(GET, "/v1/sessions/{session}/attachments/{attachment}", E::AttachmentLink, Member, "attachments.link"),
        route(PUT, "/v1/uploads/{token}", E::Upload, Signed, "attachments.upload"),
        route(GET, "/v1/files/{token}", E::Download, Signed, "attachments.download"),
        route(POST, "/v1/sessions/{session}/reports", E::Moderation(M::Report), Member, "reports.create"),
        route(GET, "/v1/admin/reports", E::Moderation(M::Queue), Admin, "admin.reports"),
        route(POST, "/v1/admin/sessions/{session}/remove", E::Moderation(M::Remove), Admin, "admin.remove"),
        route(POST, "/v1/admin/sessions/{session}/dismiss", E::Moderation(M::Dismiss), Admin, "admin.dismiss"),
        route(GET, "/v1/admin/sessions/{session}/moderation", E::Moderation(M::Record), Admin, "admin.moderation"),
        route(POST, "/v1/admin/sessions/{session}/sanctions", E::Moderation(M::Sanction), Admin, "admin.sanction"),
        route(DELETE, "/v1/admin/sessions/{session}/sanctions/{user}", E::Moderation(M::Lift), Admin, "admin.lift"),
        route(GET, "/v1/admin/filter", E::Moderation(M::FilterLog), Admin, "admin.filter"),
        route(POST, "/v1/admin/sanctions", E::Moderation(M::Ban), Admin, "admin.sanctions.create"),
        route(GET, "/v1/admin/sanctions", E::Moderation(M::Bans), Admin, "admin.sanctions.list"),
        route(DELETE, "/v1/admin/sanctions/{user}", E::Moderation(M::Unban), Admin, "admin.sanctions.lift"),
        route(GET, "/v1/me/blocks", E::Moderation(M::Blocks), User, "blocks.list"),
        route(PUT, "/v1/me/blocks/{user}", E::Moderation(M::Block), User, "blocks.add"),
        route(DELETE, "/v1/me/blocks/{user}", E::Moderation(M::Unblock), User, "blocks.remove"),
        route(POST, "/v1/admin/maintenance/reencrypt", E::Reencrypt, Admin, "admin.reencrypt"),
        route(GET, "/v1/admin/sessions", E::AdminSessions, Admin, "admin.sessions"),
        route(GET, "/v1/admin/audit", E::Audit, Admin, "admin.audit"),
        route(GET, "/v1/admin/usage", E::Usage, Admin, "admin.usage"),
        route(GET, "/v1/admin/sessions/{session}", E::AdminSession, Admin, "admin.session"),
        route(POST, "/v1/admin/sessions/{session}/escalate", E::Desk(DeskVerb::Escalate), Admin, "admin.escalate"),
        route(POST, "/v1/admin/sessions/{session}/claim", E::Desk(DeskVerb::Claim), Admin, "admin.claim"),
        route(POST, "/v1/admin/sessions/{session}/takeover", E::Desk(DeskVerb::Takeover), Admin, "admin.takeover"),
        route(POST, "/v1/admin/sessions/{session}/transfer", E::Desk(DeskVerb::Transfer), Admin, "admin.transfer"),
        route(POST, "/v1/admin/sessions/{session}/resolve", E::Desk(DeskVerb::Resolve), Admin, "admin.resolve"),
        route(POST, "/v1/admin/sessions/{session}/release", E::Desk(DeskVerb::Release), Admin, "admin.release"),
        route(POST, "/v1/admin/sessions/{session}/close", E::Desk(DeskVerb::Close), Admin, "admin.close"),
        route(GET, "/v1/admin/sessions/{session}/replication", E::Replication, Admin, "admin.replication"),
        route(POST, "/v1/admin/inbox/tickets", E::InboxTicket, Admin, "admin.inbox_tickets"),
        route(GET, "/v1/admin/inbox/ws", E::InboxSocket, Admin, "admin.inbox"),
        route(POST, "/v1/admin/webhooks", E::Webhooks(W::Create), Admin, "admin.webhooks.create"),
        route(GET, "/v1/admin/webhooks", E::Webhooks(W::List), Admin, "admin.webhooks.list"),
        route(GET, "/v1/admin/webhooks/{webhook}", E::Webhooks(W::Get), Admin, "admin.webhooks.get"),
        route(PATCH, "/v1/admin/webhooks/{webhook}", E::Webhooks(W::Update), Admin, "admin.webhooks.update"),
        route(DELETE, "/v1/admin/webhooks/{webhook}", E::Webhooks(W::Delete), Admin, "admin.webhooks.delete"),
        route(POST, "/v1/service/sessions/{session}/messages", E::Service(S::Post), Service, "service.post"),
        route(POST, "/v1/service/sessions/{session}/status", E::Service(S::Status), Service, "service.status"),
        route(GET, "/v1/service/sessions/{session}/transcript", E::Service(S::Transcript), Service, "service.transcript"),
        route(POST, "/v1/service/visitors/{user}/link", E::LinkVisitor, Service, "service.link_visitor"),
        route(GET, "/v1/admin/webhooks/{webhook}/deliveries", E::Webhooks(W::Deliveries), Admin, "admin.webhooks.deliveries"),
        route(GET, "/v1/admin/profiles", E::Profiles(P::List), Admin, "admin.profiles.list"),
        route(GET, "/v1/admin/profiles/{profile}", E::Profiles(P::Get), Admin, "admin.profiles.get"),
        route(PUT, "/v1/admin/profiles/{profile}", E::Profiles(P::Put), Admin, "admin.profiles.put"),
        route(DELETE, "/v1/admin/profiles/{profile}", E::Profiles(P::Delete), Admin, "admin.profiles.delete"),
    ]
};

/// A preflight answers for any path some route serves.
static PREFLIGHT: Spec = route(
    "OPTIONS",
    "",
    Endpoint::Preflight,
    Access::Public,
    "preflight",
);

const SESSION: &str = "{session}";
const USER: &str = "{user}";
const WEBHOOK: &str = "{webhook}";
const ATTACHMENT: &str = "{attachment}";
const TOKEN: &str = "{token}";
const PROFILE: &str = "{profile}";
const PLACEHOLDERS: [&str; 6] = [SESSION, USER, WEBHOOK, ATTACHMENT, TOKEN, PROFILE];
/// Longest `{token}` accepted (a signed URL's claims and MAC).
const MAX_TOKEN_CHARS: usize = 2048;

/// A request matched to a line of the table, with the path's parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route<'a> {
    pub spec: &'static Spec,
    /// The `{session}` segment, checked.
    pub session: Option<SessionId<'a>>,
    /// The `{user}` segment as it stands in the path (percent-encoded);
    /// it decodes to a valid user id.
    pub user: Option<&'a str>,
    /// The `{webhook}` segment: an endpoint id's shape, checked.
    pub webhook: Option<&'a str>,
    /// The `{attachment}` segment: an attachment id's shape, checked.
    pub attachment: Option<&'a str>,
    /// The `{token}` segment: URL-safe and bounded, not yet verified.
    pub token: Option<&'a str>,
    /// The `{profile}` segment: a profile name's shape, checked.
    pub profile: Option<&'a str>,
}

impl Route<'_> {
    /// The route's name in logs and metrics.
    pub fn name(&self) -> &'static str {
        self.spec.name
    }

    pub fn endpoint(&self) -> Endpoint {
        self.spec.endpoint
    }

    pub fn access(&self) -> Access {
        self.spec.access
    }

    pub fn rate_limited(&self) -> bool {
        self.spec.endpoint.rate_limited()
    }

    /// The session the route is about, if any.
    pub fn session_id(&self) -> Option<&str> {
        self.session.map(SessionId::as_str)
    }
}

/// The shape of a path for the log: the table's literal words kept, every
/// other segment replaced by `*` (it may be a user id, an e-mail address or
/// a token), at most 12 segments.
pub fn redacted_path(path: &str) -> String {
    let known = |seg: &str| {
        ROUTES
            .iter()
            .any(|r| segments(r.path).any(|p| p == seg && !PLACEHOLDERS.contains(&p)))
    };
    let mut out = String::new();
    for (i, seg) in segments(path).enumerate() {
        if i == 12 {
            out.push_str("/…");
            break;
        }
        out.push('/');
        if seg.is_empty() || known(seg) {
            out.push_str(seg);
        } else {
            out.push('*');
        }
    }
    out
}

fn segments(path: &str) -> std::str::Split<'_, char> {
    path.trim_start_matches('/').split('/')
}

/// Maps a method and path to a route: 404 for unknown paths (and malformed
/// ids, which are indistinguishable from unknown ones), 405 for a known path
/// with the wrong method.
pub fn resolve<'a>(method: &str, path: &'a str) -> Result<Route<'a>, AppError> {
    if method == "OPTIONS" {
        // Any path some method serves may be preflighted.
        return match resolve("GET", path) {
            Err(AppError::NotFound) => Err(AppError::NotFound),
            _ => Ok(Route {
                spec: &PREFLIGHT,
                session: None,
                user: None,
                webhook: None,
                attachment: None,
                token: None,
                profile: None,
            }),
        };
    }
    let (spec, p) = matched(method, path)?;
    let Params {
        session,
        user,
        webhook,
        attachment,
        token,
        profile,
    } = p;
    let session = match session {
        None => None,
        Some(id) => Some(SessionId::parse(id).ok_or(AppError::NotFound)?),
    };
    if user.is_some_and(|u| !percent_decode(u).is_some_and(|u| is_valid_user_id(&u))) {
        return Err(AppError::NotFound);
    }
    if webhook.is_some_and(|w| !crate::webhooks::is_endpoint_id(w)) {
        return Err(AppError::NotFound);
    }
    if attachment.is_some_and(|a| !crate::attachment::is_id(a)) {
        return Err(AppError::NotFound);
    }
    if profile.is_some_and(|p| !crate::llm::profile::is_name(p)) {
        return Err(AppError::NotFound);
    }
    let token_shape = |t: &str| {
        (1..=MAX_TOKEN_CHARS).contains(&t.len())
            && t.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
    };
    if token.is_some_and(|t| !token_shape(t)) {
        return Err(AppError::NotFound);
    }
    Ok(Route {
        spec,
        session,
        user,
        webhook,
        attachment,
        token,
        profile,
    })
}

/// The methods a path answers, for a 405's `Allow` header: those the
/// route table matches it with (ids unchecked: a 405 is about the shape).
pub fn allowed_methods(path: &str) -> Vec<&'static str> {
    let mut allowed: Vec<&'static str> = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"]
        .into_iter()
        .filter(|m| matched(m, path).is_ok())
        .collect();
    if !allowed.is_empty() {
        allowed.push("OPTIONS");
    }
    allowed
}

/// The table's line for a method and path, by their shape alone, with the
/// parameters unchecked.
fn matched<'a>(method: &str, path: &'a str) -> Result<Matched<'a>, AppError> {
    let method = if method == "HEAD" { "GET" } else { method };
    let mut shape_known = false;
    for spec in ROUTES {
        let Some(params) = params(spec.path, path) else {
            continue;
        };
        if spec.method == method {
            return Ok((spec, params));
        }
        shape_known = true;
    }
    Err(if shape_known {
        AppError::MethodNotAllowed
    } else {
        AppError::NotFound
    })
}

/// The placeholder segments of a path, unchecked.
#[derive(Default)]
struct Params<'a> {
    session: Option<&'a str>,
    user: Option<&'a str>,
    webhook: Option<&'a str>,
    attachment: Option<&'a str>,
    token: Option<&'a str>,
    profile: Option<&'a str>,
}
type Matched<'a> = (&'static Spec, Params<'a>);

/// The path's parameters when it has the pattern's shape.
fn params<'a>(pattern: &str, path: &'a str) -> Option<Params<'a>> {
    let mut p = Params::default();
    let mut given = segments(path);
    for want in segments(pattern) {
        let seg = given.next()?;
        match want {
            SESSION => p.session = Some(seg),
            USER => p.user = Some(seg),
            WEBHOOK => p.webhook = Some(seg),
            ATTACHMENT => p.attachment = Some(seg),
            TOKEN => p.token = Some(seg),
            PROFILE => p.profile = Some(seg),
            literal if literal == seg => {}
            _ => return None,
        }
    }
    given.next().is_none().then_some(p)
}

#[cfg(target_arch = "wasm32")]
pub use dispatch::handle;

#[cfg(target_arch = "wasm32")]
mod dispatch;

#[cfg(test)]
mod tests;
