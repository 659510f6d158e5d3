// The README's example: connects to `notifd standalone` on 127.0.0.1:8080
// as alice and prints what she receives. From this folder:
//
//   node --experimental-websocket example.mjs   (Node 22 and later: node example.mjs)
//
// NOTIFD names the notifd binary (default: the repository's release build);
// NOTIF_URL the service (default http://127.0.0.1:8080).
import { execFileSync } from "node:child_process";
import { connect } from "./dist/notif.js";

const notifd = process.env.NOTIFD ?? new URL("../../target/release/notifd", import.meta.url).pathname;
// `notifd token` signs a client token with the standalone service's secret.
const getToken = () => execFileSync(notifd, ["token", "--recipient", "alice"]).toString().trim();

const client = connect({ url: process.env.NOTIF_URL ?? "http://127.0.0.1:8080", getToken });
client.on("state", (s) => console.log("state:", s));
client.on("notification", (n) => console.log("notification:", n.position, JSON.stringify(n.payload)));
