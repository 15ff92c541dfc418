//! The admin session listing over 1,200 sessions spread over the three D1
//! shards: every sort and order pages through each row exactly once while
//! rows are added, filters agree with the databases, and the statement is
//! served by an index.

mod common;

use common::*;
use confab::listing::{ListQuery, Param};
use reqwest::Method;
use serde_json::{json, Value};
use std::collections::HashSet;

const N: i64 = 1200;
const BASE: i64 = 1_700_000_000_000;

async fn seed(h: &Harness) {
    // One statement per shard generates its rows (every row is in one
    // shard, independently of its owner): owners, modes, statuses, counts
    // and times vary so each filter and sort has work to do (and ties,
    // across shards too).
    let shards = h.shards().await;
    assert!(shards.len() >= 3, "the tests run sharded: {shards:?}");
    for (k, shard) in shards.iter().enumerate() {
        seed_shard(h, shard, k, shards.len()).await;
    }
}

async fn seed_shard(h: &Harness, shard: &str, k: usize, n: usize) {
    h.sql_on(
        shard,
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?1)
         INSERT INTO sessions (id, owner_id, mode, status, waiting_since, message_count, human_assisted,
                               tokens_in, tokens_total, created_at, updated_at)
         SELECT printf('adm%05d', i), 'owner-' || (i % 3),
                CASE WHEN i % 7 = 0 THEN 'human' ELSE 'assistant' END,
                CASE i % 10 WHEN 0 THEN 'closed' WHEN 1 THEN 'waiting' ELSE 'open' END,
                -- A wait (its start repeating, for ties) on every third row.
                CASE WHEN i % 3 = 0 THEN ?2 + (i % 40) * 1000 ELSE 0 END,
                i % 50, CASE WHEN i % 5 = 0 THEN 1 ELSE 0 END,
                (i * 37) % 1000, (i * 37) % 1000,
                ?2 + i * 1000, ?2 + ((i * 7919) % ?1) * 1000
           FROM n WHERE (i / 2) % ?4 = ?3",
        json!([N, BASE, k, n]),
    )
    .await;
}

async fn page_all(
    admin: &User,
    query: &str,
    during: impl Fn(usize) -> Option<String>,
    h: &Harness,
) -> Vec<Value> {
    let mut rows = Vec::new();
    let mut cursor: Option<String> = None;
    for page in 0.. {
        let mut path = format!("/v1/admin/sessions?{query}");
        if let Some(c) = &cursor {
            path.push_str(&format!("&cursor={}", urlencode(c)));
        }
        let (status, body) = admin.call(Method::GET, &path, None).await;
        assert_eq!(status, 200, "{path}: {body}");
        rows.extend(body["sessions"].as_array().unwrap().iter().cloned());
        if let Some(sql) = during(page) {
            h.sql(&sql, json!([])).await;
        }
        match body["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
        assert!(page < 500, "pagination does not end");
    }
    rows
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn seeded(rows: &[Value]) -> Vec<&Value> {
    rows.iter()
        .filter(|r| r["id"].as_str().unwrap().starts_with("adm"))
        .collect()
}

#[tokio::test]
async fn admin_listing_pages_filters_and_sorts_over_1200_sessions() {
    let h = Harness::start(Options::default());
    seed(&h).await;
    let admin = {
        let mut u = User::new(&h, "lister");
        u.token = token_with_roles(&u.id, "Lister", &["admin"]);
        u
    };

    // Newest first by creation while new sessions arrive between pages: the
    // seeded rows each appear once, in order, and none is skipped.
    let rows = page_all(
        &admin,
        "sort=created&order=desc&limit=100",
        |page| {
            (page < 5).then(|| {
                format!(
                    "INSERT INTO sessions (id, owner_id, created_at, updated_at) VALUES ('new{page}', 'owner-new', {t}, {t})",
                    t = BASE + (N + 10 + page as i64) * 1000
                )
            })
        },
        &h,
    )
    .await;
    let ids: Vec<&str> = seeded(&rows)
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), N as usize);
    assert_eq!(
        ids.iter().collect::<HashSet<_>>().len(),
        N as usize,
        "no row twice"
    );
    let created: Vec<i64> = rows
        .iter()
        .map(|r| r["created_at"].as_i64().unwrap())
        .collect();
    assert!(
        created.windows(2).all(|w| w[0] > w[1]),
        "strictly newest first"
    );

    // Every sort, both orders, small pages with many ties (message counts
    // repeat every 50 rows): each row once, in order.
    for (sort, field) in [
        ("messages", "message_count"),
        ("tokens", "tokens"),
        ("updated", "updated_at"),
        // Null (never waited) sorts as 0.
        ("waiting", "waiting_since"),
    ] {
        for order in ["asc", "desc"] {
            let rows = page_all(
                &admin,
                &format!("sort={sort}&order={order}&limit=97"),
                |_| None,
                &h,
            )
            .await;
            let unique: HashSet<&str> = rows.iter().map(|r| r["id"].as_str().unwrap()).collect();
            assert_eq!(unique.len(), rows.len(), "{sort} {order}: a row repeated");
            assert!(
                seeded(&rows).len() == N as usize,
                "{sort} {order}: rows missing"
            );
            let keys: Vec<(i64, &str)> = rows
                .iter()
                .map(|r| (r[field].as_i64().unwrap_or(0), r["id"].as_str().unwrap()))
                .collect();
            let sorted = keys.windows(2).all(|w| {
                if order == "asc" {
                    w[0] < w[1]
                } else {
                    w[0] > w[1]
                }
            });
            assert!(sorted, "{sort} {order}: out of order");
        }
    }

    // Filters agree with the database.
    let filters = [
        (
            "mode=human&owner=owner-1",
            "mode = 'human' AND owner_id = 'owner-1'",
        ),
        (
            "status=closed&human_assisted=true",
            "status = 'closed' AND human_assisted = 1",
        ),
        (
            "human_assisted=false&status=waiting",
            "human_assisted = 0 AND status = 'waiting'",
        ),
        (
            &format!(
                "created_from={}&created_to={}",
                BASE + 100_000,
                BASE + 300_000
            ),
            &format!(
                "created_at >= {} AND created_at < {}",
                BASE + 100_000,
                BASE + 300_000
            ),
        ),
        (
            &format!("updated_from={}&mode=assistant", BASE + 900_000),
            &format!("updated_at >= {} AND mode = 'assistant'", BASE + 900_000),
        ),
    ];
    for (query, sql) in filters {
        let rows = page_all(&admin, &format!("{query}&limit=200"), |_| None, &h).await;
        let want = h
            .sql_all(&format!("SELECT id FROM sessions WHERE {sql}"), json!([]))
            .await;
        let mut got: Vec<&str> = rows.iter().map(|r| r["id"].as_str().unwrap()).collect();
        got.sort();
        let mut want: Vec<&str> = want.iter().map(|r| r["id"].as_str().unwrap()).collect();
        want.sort();
        assert!(!want.is_empty(), "{query} selects something");
        assert_eq!(got, want, "{query}");
    }

    // The figures an admin sorts by are in each row.
    let (_, body) = admin
        .call(
            Method::GET,
            "/v1/admin/sessions?owner=owner-2&limit=1&sort=tokens",
            None,
        )
        .await;
    let row = &body["sessions"][0];
    for field in [
        "id",
        "owner_id",
        "mode",
        "status",
        "message_count",
        "tokens",
        "human_assisted",
        "created_at",
        "updated_at",
    ] {
        assert!(!row[field].is_null(), "{field} in {row}");
    }

    // Bad parameters are 400 with a code; a cursor from another sort too.
    for (query, code) in [
        ("sort=title", "invalid_sort"),
        ("status=active", "invalid_filter"),
        ("assignee=%20x", "invalid_filter"),
        ("limit=1000", "invalid_limit"),
        ("colour=red", "invalid_filter"),
        (
            "sort=messages&cursor=created.desc.1.adm00001",
            "invalid_cursor",
        ),
    ] {
        let (status, body) = admin
            .call(Method::GET, &format!("/v1/admin/sessions?{query}"), None)
            .await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (400, Some(code)),
            "{query}"
        );
    }

    // Each sort's page is one index range scan: no full scan, no sort step.
    for sort in ["updated", "created", "messages", "tokens"] {
        for cursor in [None, Some(format!("{sort}.desc.5.adm00005"))] {
            let mut pairs = vec![("sort", sort)];
            if let Some(c) = cursor.as_deref() {
                pairs.push(("cursor", c));
            }
            let q = ListQuery::parse(pairs).unwrap();
            let (tail, params) = q.sql_tail();
            let params: Vec<Value> = params
                .into_iter()
                .map(|p| match p {
                    Param::Int(n) => json!(n),
                    Param::Text(t) => json!(t),
                })
                .collect();
            let plan = h
                .sql(
                    &format!("EXPLAIN QUERY PLAN SELECT * FROM sessions{tail}"),
                    Value::from(params),
                )
                .await;
            let plan = plan
                .iter()
                .map(|r| r["detail"].as_str().unwrap_or(""))
                .collect::<Vec<_>>()
                .join(" | ");
            assert!(plan.contains("USING INDEX sessions_"), "{sort}: {plan}");
            if cursor.is_some() {
                // The cursor starts a range in the index; no rows before it are read.
                assert!(plan.contains("SEARCH"), "{sort}: {plan}");
            }
            assert!(
                !plan.contains("TEMP B-TREE"),
                "{sort}: sorts in memory: {plan}"
            );
        }
    }
}
