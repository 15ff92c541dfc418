//! Upload throughput: `count` files of `bytes` each go up as a client sends
//! them (a slot from the session's API, then a `PUT` of the bytes to the
//! signed URL), `concurrency` at a time; the Worker checks, seals and
//! writes each to R2 and the session object records it. Then each is
//! downloaded once through a signed link.

use crate::common::*;
use futures::StreamExt;
use serde_json::{json, Value};
use std::time::Instant;

pub async fn run(
    h: &Harness,
    owner: &User,
    (count, bytes): (usize, usize),
    concurrency: usize,
) -> Value {
    let s = owner.create_session("uploads").await;
    // A PNG header, then filler: what the server reads of an image.
    let mut file = b"\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR\0\0\x04\0\0\0\x03\0\x08\x06\0\0\0".to_vec();
    file.resize(bytes, 0x5a);
    let one = |i: usize| {
        let (file, s) = (file.clone(), s.clone());
        async move {
            let t = Instant::now();
            let (status, slot) = owner
                .call(
                    reqwest::Method::POST,
                    &format!("/v1/sessions/{s}/attachments"),
                    Some(json!({"name": format!("f{i}.png"), "type": "image/png", "size": file.len()})),
                )
                .await;
            assert_eq!(status, 201, "{slot}");
            let url = format!("{}{}", h.url, slot["upload_url"].as_str().unwrap());
            let res = http().put(url).body(file).send().await.unwrap();
            assert_eq!(res.status().as_u16(), 201);
            let view: Value = res.json().await.unwrap();
            (
                t.elapsed().as_micros() as u64,
                view["id"].as_str().unwrap().to_string(),
            )
        }
    };
    let start = Instant::now();
    let done: Vec<(u64, String)> = futures::stream::iter(0..count)
        .map(one)
        .buffer_unordered(concurrency)
        .collect()
        .await;
    let up_s = start.elapsed().as_secs_f64();
    let start = Instant::now();
    let downloads: Vec<u64> = futures::stream::iter(done.iter().map(|(_, id)| id.clone()))
        .map(|id| {
            let s = s.clone();
            async move {
                let t = Instant::now();
                let (status, link) = owner
                    .call(
                        reqwest::Method::GET,
                        &format!("/v1/sessions/{s}/attachments/{id}"),
                        None,
                    )
                    .await;
                assert_eq!(status, 200, "{link}");
                let res = http()
                    .get(format!("{}{}", h.url, link["url"].as_str().unwrap()))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(res.bytes().await.unwrap().len(), bytes);
                t.elapsed().as_micros() as u64
            }
        })
        .buffer_unordered(concurrency)
        .collect()
        .await;
    let down_s = start.elapsed().as_secs_f64();
    let mut up: Vec<u64> = done.iter().map(|(t, _)| *t).collect();
    up.sort_unstable();
    let mut down = downloads;
    down.sort_unstable();
    let p = |v: &[u64], q: f64| v[((v.len() - 1) as f64 * q).round() as usize] as f64 / 1000.0;
    let mib = (count * bytes) as f64 / (1024.0 * 1024.0);
    println!(
        "\nuploads: {count} x {bytes} bytes, {concurrency} at a time: {:.1} MiB/s up (p50 {:.1} ms, p99 {:.1} ms each), {:.1} MiB/s down (p50 {:.1} ms, p99 {:.1} ms)",
        mib / up_s,
        p(&up, 0.5),
        p(&up, 0.99),
        mib / down_s,
        p(&down, 0.5),
        p(&down, 0.99)
    );
    json!({"files": count, "bytes": bytes, "concurrency": concurrency,
           "up_mib_per_s": mib / up_s, "up_p50_ms": p(&up, 0.5), "up_p99_ms": p(&up, 0.99),
           "down_mib_per_s": mib / down_s, "down_p50_ms": p(&down, 0.5), "down_p99_ms": p(&down, 0.99)})
}
