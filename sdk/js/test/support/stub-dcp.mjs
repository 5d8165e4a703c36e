// A scripted stand-in for DCP, for retry behaviour only: each request gets its path's next canned answer.

import { createServer } from "node:http";

/**
 * Serves `script[path]` answers in order (the last one repeats); an answer is `{status, body, headers}` or
 * "hang" (never answered). Records every request as `{method, path, query, headers, body}`.
 */
export async function stubDcp(script) {
  const requests = [];
  const served = {};
  const server = createServer(async (request, response) => {
    let body = "";
    for await (const chunk of request) body += chunk;
    const url = new URL(request.url, "http://stub");
    const path = url.pathname;
    requests.push({
      method: request.method,
      path,
      query: Object.fromEntries(url.searchParams),
      headers: request.headers,
      body: body ? JSON.parse(body) : null,
    });
    const answers = script[path] ?? [{ status: 404, body: { error: "Not found" } }];
    const answer = answers[Math.min(served[path] ?? 0, answers.length - 1)];
    served[path] = (served[path] ?? 0) + 1;
    if (answer === "hang") return;
    response.writeHead(answer.status, { "content-type": "application/json", ...answer.headers });
    response.end(JSON.stringify(answer.body));
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${server.address().port}`,
    requests,
    close: () => {
      server.closeAllConnections();
      return new Promise((resolve) => server.close(resolve));
    },
  };
}

/** A sleep that returns at once and remembers what it was asked to wait, so tests never wait for real. */
export function recordingSleep() {
  const waits = [];
  const sleep = async (ms) => {
    waits.push(ms);
  };
  return { waits, sleep };
}
