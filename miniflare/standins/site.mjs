// A stand-in web site for link previews (the product's users link to
// pages; the Worker fetches them). Served under /site/ by the stand-in
// server (llm.mjs), over real HTTP, so previews are tested without the
// internet:
//
//   GET /site/article          an HTML page with Open Graph tags
//   GET /site/plain            only a <title>
//   GET /site/moved            302 to /site/article
//   GET /site/to-private       302 to http://10.0.0.1/ (must be refused)
//   GET /site/loop             302 to itself (too many redirects)
//   GET /site/slow             answers after 5 s
//   GET /site/huge             600 KB of padding, then a <title>
//   GET /site/image.png        a PNG, not a page
//   GET /site/gone             404
//   GET /_standin/site/hits?path=/site/article   → {"hits": N}
const hits = new Map();
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const ARTICLE = `<!doctype html><html><head>
<meta charset="utf-8">
<title>Fallback title</title>
<meta property="og:title" content="Edge chat &amp; you">
<meta property="og:description" content="How Confab keeps every device in step.">
<meta property="og:image" content="/site/image.png">
<meta property="og:site_name" content="Stand-in Times">
</head><body><p>Hello.</p></body></html>`;

/** Serves `url` if it is the site's; false when it is not. */
export async function site(url, res) {
  if (url.pathname === "/_standin/site/hits") {
    res.writeHead(200, { "content-type": "application/json" });
    res.end(JSON.stringify({ hits: hits.get(url.searchParams.get("path")) ?? 0 }));
    return true;
  }
  if (!url.pathname.startsWith("/site/")) return false;
  hits.set(url.pathname, (hits.get(url.pathname) ?? 0) + 1);
  const html = (body, status = 200) => {
    res.writeHead(status, { "content-type": "text/html; charset=utf-8" });
    res.end(body);
  };
  const redirect = (to) => {
    res.writeHead(302, { location: to });
    res.end();
  };
  switch (url.pathname) {
    case "/site/article": return html(ARTICLE), true;
    case "/site/plain": return html("<html><head><title>Just a title</title></head></html>"), true;
    case "/site/moved": return redirect("/site/article"), true;
    case "/site/to-private": return redirect("http://10.0.0.1/"), true;
    case "/site/loop": return redirect("/site/loop"), true;
    case "/site/slow":
      await sleep(5000);
      return html(ARTICLE), true;
    case "/site/huge":
      return html(`<html><head>${"<!-- padding -->".repeat(40_000)}<title>Too far down</title></head></html>`), true;
    case "/site/image.png":
      res.writeHead(200, { "content-type": "image/png" });
      res.end(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]));
      return true;
    default: return html("<html><head><title>Not found</title></head></html>", 404), true;
  }
}
