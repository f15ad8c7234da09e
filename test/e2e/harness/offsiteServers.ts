/**
 * The off-site backup's backends for the end-to-end tests, run on the CI machine outside the
 * VM (so they outlive it, as a real off-site copy outlives the server), by rclone built from its
 * Go module (tools/build.sh rclone, which with-vm.sh runs):
 * - `rclone serve s3`: the stand-in for a CLOUD BUCKET (Backblaze B2, Wasabi, MinIO, Garage…):
 *   an access key id and secret, a path-style bucket, plain http or https with a CA of its own.
 * - `rclone serve sftp`: the stand-in for ANOTHER HOMELAB MACHINE: a host key of its own (the
 *   test pins its public line in known_hosts) and one authorized client key.
 * Each listens on 127.0.0.1:PORT here; the VM reaches it at 10.0.2.100:PORT, the one way out of
 * its restricted network (start-vm.sh, GITEA_HOMELAB_VM_HOST_SERVICES="s3 sftp", TestVm.hostService).
 * `stop()` is the backend being down (the guest's connection is accepted by qemu and closed at
 * once: restic sees EOF or a reset, not a refusal); `restart()` brings it back with the same data.
 */
import { ChildProcess, execFileSync, spawn } from "child_process";
import { randomBytes } from "crypto";
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync } from "fs";
import { connect } from "net";
import { join, resolve } from "path";
import { TestVm } from "./vm";

const REPO = resolve(__dirname, "../../..");

/** The rclone that tools/build.sh built (GITEA_HOMELAB_TOOLS_BIN, default .tools/bin). */
export function rcloneBinary(): string {
  const bin = join(process.env.GITEA_HOMELAB_TOOLS_BIN ?? join(REPO, ".tools/bin"), "rclone");
  if (!existsSync(bin)) throw new Error(`no rclone at ${bin}: run tools/build.sh rclone (with-vm.sh does)`);
  return bin;
}

export interface OffsiteServer {
  readonly kind: "s3" | "sftp";
  /** On 127.0.0.1 here, and at `address` from inside the VM. */
  readonly port: number;
  /** The address the VM reaches this server at (10.0.2.100). */
  readonly address: string;
  /** What the backend stores, on this machine (kept across stop/restart). */
  readonly dataDir: string;
  /** The repository as restic on the VM writes it. */
  readonly repository: string;
  /** rclone's log (appended to across restarts). */
  readonly logFile: string;
  running(): boolean;
  /** The backend goes down: rclone exits and the port closes; the data stay. */
  stop(): Promise<void>;
  /** Up again on the same port, with the same data, keys and credentials. */
  restart(): Promise<void>;
}

export interface S3Server extends OffsiteServer {
  readonly kind: "s3";
  readonly bucket: string;
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  /** restic's environment for this repository (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY). */
  readonly env: Record<string, string>;
  /** With `tls`: the PEM certificate of the CA that signed the server's (restic's --cacert). */
  readonly caCertificate?: string;
}

export interface SftpServer extends OffsiteServer {
  readonly kind: "sftp";
  /** The login name in the repository (rclone takes any name with the authorized key). */
  readonly user: string;
  /** The client's private key (OpenSSH format, ed25519), the only key the server accepts. */
  readonly clientPrivateKey: string;
  readonly clientPublicKey: string;
  /** The server's host key, `ssh-ed25519 AAAA…` (what a stack's offsiteHostKey pins). */
  readonly hostPublicKey: string;
  /** The known_hosts line for it as the VM connects: `[10.0.2.100]:PORT ssh-ed25519 AAAA…`. */
  readonly knownHostsLine: string;
}

export interface OffsiteServers {
  s3: S3Server;
  sftp: SftpServer;
  /** Stops both (the data stay under `dir`). */
  stopAll(): Promise<void>;
}

interface ServerOptions {
  /** Everything of this server lives here (emptied on start): data, keys, config, log. */
  dir: string;
  /** The port on 127.0.0.1 (the same port at `address` in the VM). */
  port: number;
  /** Where the VM reaches this machine: TestVm.hostService(...).address. */
  address: string;
  /** The repository's path in the bucket / on the server (default "gitea-homelab"). */
  path?: string;
}

/** Live rclone processes of this test process: killed when it exits, whatever happened. */
const live = new Set<ChildProcess>();
process.once("exit", () => {
  for (const child of live) child.kill("SIGKILL");
});

async function portAnswers(port: number): Promise<boolean> {
  return new Promise((done) => {
    const socket = connect({ host: "127.0.0.1", port });
    socket.setTimeout(1000);
    socket.once("connect", () => {
      socket.destroy();
      done(true);
    });
    socket.once("error", () => done(false));
    socket.once("timeout", () => {
      socket.destroy();
      done(false);
    });
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Runs `rclone ARGS...` in the background until stopped; start/stop/restart it. */
function rcloneProcess(name: string, port: number, args: string[], logFile: string) {
  let child: ChildProcess | undefined;
  let exited: Promise<void> = Promise.resolve();
  const tail = () => (existsSync(logFile) ? readFileSync(logFile, "utf8").split("\n").slice(-15).join("\n") : "");
  const start = async () => {
    if (child) return;
    if (await portAnswers(port)) throw new Error(`${name}: 127.0.0.1:${port} is already taken`);
    const log = openSync(logFile, "a");
    try {
      child = spawn(rcloneBinary(), args, { stdio: ["ignore", log, log] });
    } finally {
      closeSync(log);
    }
    const proc = child;
    live.add(proc);
    exited = new Promise((done) =>
      proc.once("exit", () => {
        live.delete(proc);
        if (child === proc) child = undefined;
        done();
      }),
    );
    const deadline = Date.now() + 30_000;
    while (!(await portAnswers(port))) {
      if (child !== proc) throw new Error(`${name}: rclone exited before listening on ${port}:\n${tail()}`);
      if (Date.now() > deadline) {
        await stop();
        throw new Error(`${name}: rclone not listening on ${port} after 30 s:\n${tail()}`);
      }
      await sleep(200);
    }
  };
  const stop = async () => {
    const proc = child;
    if (!proc) return;
    proc.kill("SIGTERM");
    let timer: NodeJS.Timeout | undefined;
    const killed = await Promise.race([exited.then(() => true), new Promise<boolean>((r) => (timer = setTimeout(() => r(false), 10_000)))]);
    clearTimeout(timer);
    if (!killed) {
      proc.kill("SIGKILL");
      await exited;
    }
  };
  return { start, stop, running: () => child !== undefined };
}

function run(cmd: string, args: string[]): string {
  return execFileSync(cmd, args, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
}

/** A fresh ed25519 key pair made with ssh-keygen: [private key file, public line]. */
function sshKeyPair(file: string, comment: string): string {
  run("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", file]);
  return readFileSync(`${file}.pub`, "utf8").trim();
}

/** A CA of its own and a server certificate from it for `ips` (openssl CLI). Returns the CA's PEM. */
function serverCertificate(dir: string, ips: string[]): string {
  const at = (f: string) => join(dir, f);
  const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"];
  run("openssl", ["req", "-x509", ...ec, "-subj", "/CN=offsite-s3-test-ca", "-days", "30", "-keyout", at("ca.key"), "-out", at("ca.pem"),
    "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign"]);
  run("openssl", ["req", "-new", ...ec, "-subj", "/CN=offsite-s3", "-keyout", at("server.key"), "-out", at("server.csr")]);
  writeFileSync(at("server.ext"), `subjectAltName=${ips.map((ip) => `IP:${ip}`).join(",")}\nextendedKeyUsage=serverAuth\nkeyUsage=critical,digitalSignature\n`);
  run("openssl", ["x509", "-req", "-in", at("server.csr"), "-CA", at("ca.pem"), "-CAkey", at("ca.key"), "-CAcreateserial", "-days", "30",
    "-extfile", at("server.ext"), "-out", at("server.crt")]);
  const ca = readFileSync(at("ca.pem"), "utf8");
  // rclone's --cert: the certificate followed by its CA's.
  writeFileSync(at("server.pem"), readFileSync(at("server.crt"), "utf8") + ca);
  return ca;
}

function freshDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true, mode: 0o700 });
}

/** Common rclone flags: an empty config file (never the user's), caches and log under `dir`. */
function commonFlags(dir: string, logFile: string): string[] {
  writeFileSync(join(dir, "rclone.conf"), "");
  return ["--config", join(dir, "rclone.conf"), "--cache-dir", join(dir, "cache"), "--log-file", logFile, "--log-level", "INFO"];
}

/**
 * The stand-in for a cloud bucket: `rclone serve s3` over `dir/data`, whose directory `bucket`
 * is the bucket (made here, as an owner makes it in the provider's console), path-style, with a
 * random access key; with `tls`, https with a certificate from a CA of its own
 * (`caCertificate`) for the VM's address.
 */
export async function startS3Server(opts: ServerOptions & { bucket?: string; tls?: boolean }): Promise<S3Server> {
  const dir = resolve(opts.dir);
  freshDir(dir);
  const dataDir = join(dir, "data");
  const bucket = opts.bucket ?? "gitea-offsite";
  mkdirSync(join(dataDir, bucket), { recursive: true });
  const accessKeyId = `GHT${randomBytes(8).toString("hex").toUpperCase()}`;
  const secretAccessKey = randomBytes(24).toString("base64url");
  const logFile = join(dir, "rclone.log");
  const args = ["serve", "s3", dataDir, "--addr", `127.0.0.1:${opts.port}`, "--auth-key", `${accessKeyId},${secretAccessKey}`, ...commonFlags(dir, logFile)];
  let caCertificate: string | undefined;
  if (opts.tls) {
    caCertificate = serverCertificate(dir, [opts.address, "127.0.0.1"]);
    args.push("--cert", join(dir, "server.pem"), "--key", join(dir, "server.key"));
  }
  const proc = rcloneProcess("rclone serve s3", opts.port, args, logFile);
  await proc.start();
  const scheme = opts.tls ? "https" : "http";
  return {
    kind: "s3",
    port: opts.port,
    address: opts.address,
    dataDir,
    repository: `s3:${scheme}://${opts.address}:${opts.port}/${bucket}/${opts.path ?? "gitea-homelab"}`,
    logFile,
    bucket,
    accessKeyId,
    secretAccessKey,
    env: { AWS_ACCESS_KEY_ID: accessKeyId, AWS_SECRET_ACCESS_KEY: secretAccessKey },
    caCertificate,
    running: proc.running,
    stop: proc.stop,
    restart: proc.start,
  };
}

/**
 * The stand-in for another homelab machine: `rclone serve sftp` over `dir/data`, with a host key
 * of its own and one authorized client key, both made here. The repository is
 * `sftp://USER@ADDRESS:PORT//PATH`: rclone serves `dir/data` as `/`.
 */
export async function startSftpServer(opts: ServerOptions & { user?: string }): Promise<SftpServer> {
  const dir = resolve(opts.dir);
  freshDir(dir);
  const dataDir = join(dir, "data");
  mkdirSync(dataDir);
  const hostPublicLine = sshKeyPair(join(dir, "host_ed25519"), "offsite-sftp-host");
  const clientPublicKey = sshKeyPair(join(dir, "client_ed25519"), "offsite-sftp-client");
  writeFileSync(join(dir, "authorized_keys"), `${clientPublicKey}\n`);
  const hostPublicKey = hostPublicLine.split(" ").slice(0, 2).join(" ");
  const logFile = join(dir, "rclone.log");
  const args = ["serve", "sftp", dataDir, "--addr", `127.0.0.1:${opts.port}`, "--key", join(dir, "host_ed25519"),
    "--authorized-keys", join(dir, "authorized_keys"), ...commonFlags(dir, logFile)];
  const proc = rcloneProcess("rclone serve sftp", opts.port, args, logFile);
  await proc.start();
  const user = opts.user ?? "backup";
  return {
    kind: "sftp",
    port: opts.port,
    address: opts.address,
    dataDir,
    repository: `sftp://${user}@${opts.address}:${opts.port}//${opts.path ?? "gitea-homelab"}`,
    logFile,
    user,
    clientPrivateKey: readFileSync(join(dir, "client_ed25519"), "utf8"),
    clientPublicKey,
    hostPublicKey,
    knownHostsLine: `[${opts.address}]:${opts.port} ${hostPublicKey}`,
    running: proc.running,
    stop: proc.stop,
    restart: proc.start,
  };
}

/**
 * Both stand-ins for the VM of with-vm.sh, under RUNDIR/offsite (fresh each call), on the ports
 * start-vm.sh chose for the host services "s3" and "sftp".
 */
export async function startOffsiteServers(vm: TestVm, opts: { tls?: boolean } = {}): Promise<OffsiteServers> {
  const base = join(vm.rundir, "offsite");
  const s3Where = vm.hostService("s3");
  const sftpWhere = vm.hostService("sftp");
  const s3 = await startS3Server({ dir: join(base, "s3"), ...s3Where, tls: opts.tls });
  try {
    const sftp = await startSftpServer({ dir: join(base, "sftp"), ...sftpWhere });
    return { s3, sftp, stopAll: async () => void (await Promise.all([s3.stop(), sftp.stop()])) };
  } catch (e) {
    await s3.stop();
    throw e;
  }
}
