// Drives the npm package toxiproxy-node-client (a real Toxiproxy client in another language)
// against a server: every endpoint and every toxic, with traffic through the proxy.
// Usage: node node_client.js API_URL ECHO_HOST:PORT  (NODE_PATH must reach the package).
// Prints one JSON object of observations; test_real_clients.py asserts on them.
"use strict";

const net = require("net");
const { Toxiproxy } = require("toxiproxy-node-client");

const [api, echo] = process.argv.slice(2);
const out = {};

function portOf(listen) {
  return Number(listen.slice(listen.lastIndexOf(":") + 1));
}

// Send `payload`, collect what comes back until `want` bytes, EOF, error or `limit` ms.
function exchange(port, payload, want, limit = 3000) {
  return new Promise((resolve) => {
    const start = process.hrtime.bigint();
    const sock = net.connect(port, "127.0.0.1");
    sock.setNoDelay(true);
    const reads = [];
    let got = 0;
    let settled = false;
    const finish = (how) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      sock.destroy();
      const ms = Number(process.hrtime.bigint() - start) / 1e6;
      resolve({ how, ms, bytes: got, reads });
    };
    const timer = setTimeout(() => finish("timeout"), limit);
    sock.on("connect", () => sock.write(payload));
    sock.on("data", (d) => {
      got += d.length;
      reads.push(d.length);
      if (got >= want) finish("complete");
    });
    sock.on("end", () => finish("eof"));
    sock.on("error", (e) => finish(e.code || "error"));
  });
}

async function main() {
  const toxiproxy = new Toxiproxy(api);
  out.version = JSON.parse(await toxiproxy.getVersion()).version;

  const proxy = await toxiproxy.createProxy({
    name: "node", listen: "127.0.0.1:0", upstream: echo,
  });
  const port = portOf(proxy.listen);
  out.created = proxy.toJson();
  out.plain = await exchange(port, "ping", 4);

  const latency = await proxy.addToxic({
    type: "latency", name: "lag", stream: "downstream", toxicity: 1,
    attributes: { latency: 300, jitter: 0 },
  });
  out.latency_toxic = latency.toJson();
  out.latency = await exchange(port, "ping", 4);
  const updated = await latency.update({ toxicity: 1, attributes: { latency: 100, jitter: 0 } });
  out.latency_updated_toxic = updated.toJson();
  out.latency_updated = await exchange(port, "ping", 4);
  out.fetched_toxic = (await proxy.getToxic("lag")).toJson();
  await updated.remove();
  out.after_remove = await exchange(port, "ping", 4);

  const toxics = [
    ["bandwidth", { rate: 20 }, "x".repeat(10000), 10000],
    ["slicer", { average_size: 10, size_variation: 2, delay: 2000 }, "y".repeat(200), 200],
    ["limit_data", { bytes: 5 }, "0123456789", 10],
    ["timeout", { timeout: 300 }, "ping", 4],
    ["reset_peer", { timeout: 100 }, "ping", 4],
  ];
  for (const [type, attributes, payload, want] of toxics) {
    const toxic = await proxy.addToxic({ type, stream: "downstream", toxicity: 1, attributes });
    out[type] = await exchange(port, payload, want);
    await toxic.remove();
  }
  const slow = await proxy.addToxic({
    type: "slow_close", stream: "downstream", toxicity: 1, attributes: { delay: 300 },
  });
  out.slow_close = await new Promise((resolve) => {
    const sock = net.connect(port, "127.0.0.1", () => sock.end("bye"));
    const start = Date.now();
    sock.on("data", () => {});
    sock.on("close", () => resolve({ ms: Date.now() - start }));
  });
  await slow.remove();

  const disabled = await proxy.update({ enabled: false, listen: proxy.listen, upstream: echo });
  out.disabled = { enabled: disabled.enabled, traffic: await exchange(port, "ping", 4) };
  const enabled = await proxy.update({ enabled: true, listen: proxy.listen, upstream: echo });
  out.reenabled = { enabled: enabled.enabled, traffic: await exchange(port, "ping", 4) };

  try {
    await toxiproxy.createProxy({ name: "node", listen: "127.0.0.1:0", upstream: echo });
    out.duplicate = "accepted";
  } catch (e) {
    out.duplicate = e.message;
  }
  const populated = await toxiproxy.populate([
    { name: "pop_a", listen: "127.0.0.1:0", upstream: echo },
    { name: "pop_b", listen: "127.0.0.1:0", upstream: echo, enabled: false },
  ]);
  out.populated = Object.fromEntries(
    Object.entries(populated).map(([k, v]) => [k, v.enabled]),
  );
  out.populated_traffic = await exchange(portOf(populated.pop_a.listen), "ping", 4);
  await proxy.addToxic({ type: "timeout", stream: "upstream", toxicity: 1, attributes: { timeout: 0 } });
  await toxiproxy.reset();
  const afterReset = await toxiproxy.getAll();
  const raw = await (await fetch(`${api}/proxies`)).json(); // the client keeps no toxic list
  out.after_reset = Object.fromEntries(
    Object.entries(afterReset).map(([k, v]) => [k, { enabled: v.enabled, toxics: raw[k].toxics.length }]),
  );
  out.got = (await toxiproxy.get("node")).toJson().name;
  for (const p of Object.values(afterReset)) await p.remove();
  out.remaining = Object.keys(await toxiproxy.getAll());
  try {
    await toxiproxy.get("node");
    out.missing = "found";
  } catch (e) {
    out.missing = e.message;
  }
  process.stdout.write(JSON.stringify(out) + "\n");
}

main().catch((e) => {
  process.stderr.write(`${e.stack || e}\nafter: ${Object.keys(out).join(",")}\n`);
  process.exit(1);
});
