// Connect with a token, subscribe to one project, and report (one JSON object
// per line on stdout) what arrives; exit 0 once a new_alert and an
// alerts_refresh were received, 1 on any error, 2 after the time limit.
// Usage: node client.mjs URL TOKEN PROJECT_ID [TIMEOUT_MS]
import { io } from "socket.io-client";

const [url, token, projectArg, timeoutArg] = process.argv.slice(2);
const projectId = Number(projectArg);
const report = (event, data) => process.stdout.write(JSON.stringify({ event, data }) + "\n");

const timer = setTimeout(() => { report("timeout", null); process.exit(2); }, Number(timeoutArg ?? 20000));
const socket = io(url, { auth: { token }, transports: ["websocket"], reconnection: false });
const seen = new Set();

socket.on("connect_error", (err) => { report("connect_error", String(err.message)); process.exit(1); });
socket.on("connect", () => {
  socket.timeout(5000).emit("subscribe_project", { projectId }, (err, ack) => {
    if (err || !ack || !ack.ok) { report("subscribe_failed", ack ?? String(err)); process.exit(1); }
    report("subscribed", ack);
  });
});
for (const name of ["new_alert", "alerts_refresh", "workflow_updated"]) {
  socket.on(name, (data) => {
    report(name, data);
    seen.add(name);
    if (seen.has("new_alert") && seen.has("alerts_refresh")) {
      clearTimeout(timer);
      socket.close();
      process.exit(0);
    }
  });
}
