// The demo host site `make dev` serves beside Confab: a sample product's
// page on a second local origin with the widget embedded as a product team
// would embed it (docs/client.md, "The widget"), so a newcomer sees the
// widget as their users would. Nothing here is part of Confab itself.
import http from "node:http";

const page = (confab, title, body) => `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${title} · Acme Outdoor</title>
<style>
  body { margin: 0; font: 16px/1.5 system-ui, sans-serif; color: #1d2a22; background: #f5f7f4; }
  header { background: #0a7d55; color: #fff; padding: 14px 32px; display: flex; gap: 24px; align-items: center; }
  header a { color: #fff; }
  main { max-width: 760px; margin: 32px auto; padding: 0 24px; }
  .card { background: #fff; border-radius: 10px; padding: 20px 24px; margin: 16px 0; box-shadow: 0 1px 4px #0001; }
</style></head>
<body>
<header><strong>Acme Outdoor</strong><a href="/">Shop</a><a href="/orders">Your orders</a></header>
<main>${body}</main>
<!-- The snippet: one tag. -->
<script src="${confab}/widget.js" data-title="Acme support" data-color="#0a7d55"
  data-greeting="Hi! Ask about an order, a return or a product." async></script>
</body></html>`;

const SHOP = `<h1>Trail gear</h1>
<div class="card"><h2>Ridge 40 L backpack</h2><p>Light, tough, and rain-proof. 89 €</p></div>
<div class="card"><h2>Summit tent</h2><p>Two people, 1.9 kg. 249 €</p></div>
<p>Open the chat in the corner: this page is on another origin than Confab, as your product's would be.</p>`;
const ORDERS = `<h1>Your orders</h1>
<div class="card"><h2>Order #1042</h2><p>Ridge 40 L backpack, shipped yesterday.</p></div>
<p>A conversation started on the shop page goes on here: the widget resumes it.</p>`;

/** Serves the demo on `port`; resolves to its URL. */
export function startDemo({ confab, host = "localhost", port = 0 }) {
  const server = http.createServer((req, res) => {
    const path = new URL(req.url, "http://demo").pathname;
    if (path !== "/" && path !== "/orders") {
      res.writeHead(404, { "content-type": "text/plain" });
      return res.end("not found");
    }
    res.writeHead(200, { "content-type": "text/html; charset=utf-8" });
    res.end(path === "/" ? page(confab, "Shop", SHOP) : page(confab, "Orders", ORDERS));
  });
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => resolve({ url: `http://${host}:${server.address().port}`, close: () => server.close() }));
  });
}
