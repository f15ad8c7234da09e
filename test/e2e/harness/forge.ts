/**
 * What a Gitea user does in the end-to-end suites, from the operator's account on the VM: an SSH
 * key for git, a repository pushed over SSH, a workflow run and its log, a fresh clone's history.
 */
import { createHash } from "crypto";
import { shq } from "../../../components/render/shell";
import { GiteaAuth, giteaApi, waitFor } from "./gitea";
import { TestVm } from "./vm";

/** A job's container is slow to start under TCG. */
export const RUN_MS = 600_000;

export class Forge {
  constructor(
    private readonly vm: TestVm,
    /** Gitea's HTTP base URL, as this machine reaches it. */
    private readonly web: () => string,
    private readonly auth: () => GiteaAuth,
  ) {}

  /** Runs `cmd` as the operator in the VM (bash, strict), where git pushes over SSH to Gitea. */
  asOperator(cmd: string): Promise<string> {
    return this.vm.root(`cd /home/operator && runuser -u operator -- bash -c ${shq(`set -euo pipefail; ${cmd}`)}`);
  }

  /** git over SSH with the operator's Gitea key; the host key is pinned on first use, so a changed Gitea host key fails. */
  private git(args: string): string {
    return `GIT_SSH_COMMAND='ssh -i ~/.ssh/gitea_ed25519 -o UserKnownHostsFile=~/.ssh/gitea_known_hosts -o StrictHostKeyChecking=accept-new' git ${args}`;
  }

  /** A fresh SSH key for the operator, added to the admin's account. */
  async addOperatorKey(): Promise<void> {
    await this.asOperator("rm -rf .ssh/gitea_ed25519* .ssh/gitea_known_hosts && mkdir -p .ssh && ssh-keygen -q -t ed25519 -N '' -f .ssh/gitea_ed25519");
    const key = await giteaApi(this.web(), "/user/keys", { auth: this.auth(), method: "POST", body: { title: "operator", key: await this.asOperator("cat .ssh/gitea_ed25519.pub") } });
    if (key.status !== 201) throw new Error(`adding the operator's SSH key: ${key.status} ${JSON.stringify(key.body)}`);
  }

  /** A new repository of the admin with `files` in its first commit, pushed over SSH to `cloneUrl`; returns the commit id. */
  async pushNewRepository(name: string, cloneUrl: string, files: Record<string, string>, message: string): Promise<string> {
    const repo = await giteaApi(this.web(), "/user/repos", { auth: this.auth(), method: "POST", body: { name } });
    if (repo.status !== 201) throw new Error(`creating ${name}: ${repo.status} ${JSON.stringify(repo.body)}`);
    const writes = Object.entries(files).map(([path, content]) => `mkdir -p "$(dirname ${shq(path)})" && printf '%s' ${shq(content)} >${shq(path)}`);
    await this.asOperator(
      [
        `rm -rf ${shq(name)} && mkdir ${shq(name)} && cd ${shq(name)}`,
        ...writes,
        "git init -q -b main && git add -A",
        `git -c user.name=operator -c user.email=operator@gitea.test commit -q -m ${shq(message)}`,
        `git remote add origin ${shq(cloneUrl)}`,
        this.git("push -q origin main"),
      ].join(" && "),
    );
    await this.waitForHead(name, message);
    return (await this.asOperator(`git -C ${shq(name)} rev-parse HEAD`)).trim();
  }

  /** An empty commit pushed to the repository the operator pushed before (a workflow runs on it); returns its id. */
  async pushEmptyCommit(name: string, message: string): Promise<string> {
    await this.asOperator(`cd ${shq(name)} && git -c user.name=operator -c user.email=operator@gitea.test commit -q --allow-empty -m ${shq(message)} && ${this.git("push -q origin main")}`);
    await this.waitForHead(name, message);
    return (await this.asOperator(`git -C ${shq(name)} rev-parse HEAD`)).trim();
  }

  /** Gitea takes a push in, then shows it: until then the commit list lags. */
  private async waitForHead(name: string, message: string): Promise<void> {
    await waitFor(`the commit "${message}" to show in ${name}`, 120_000, async () => {
      const commits = (await giteaApi(this.web(), `/repos/${this.auth().username}/${name}/commits?limit=1`, { auth: this.auth() })).body;
      return Array.isArray(commits) && commits[0]?.commit?.message?.trim() === message ? true : undefined;
    });
  }

  /** The log of the workflow run for commit `sha`, once it completed; with its conclusion. */
  async runLog(repo: string, sha: string): Promise<{ conclusion: string; log: string }> {
    const base = `/repos/${this.auth().username}/${repo}/actions`;
    const run = await waitFor(`the workflow run of ${sha} to finish`, RUN_MS, async () => {
      const runs: any[] = (await giteaApi(this.web(), `${base}/runs`, { auth: this.auth() })).body.workflow_runs ?? [];
      const mine = runs.find((r) => r.head_sha === sha);
      return mine?.status === "completed" ? mine : undefined;
    });
    const jobs = (await giteaApi(this.web(), `${base}/runs/${run.id}/jobs`, { auth: this.auth() })).body.jobs;
    const logs = await giteaApi(this.web(), `${base}/jobs/${jobs[0].id}/logs`, { auth: this.auth() });
    return { conclusion: run.conclusion, log: String(logs.body) };
  }

  /** The whole history of a fresh clone over SSH: commit ids, newest first. */
  /**
   * Pushes an empty commit to `repo`, whose workflow prints the vault's hash (VAULT), and
   * returns the commit and the hash its run printed; a run that did not succeed is an error.
   */
  async vaultHashAfterPush(repo: string, message: string): Promise<{ sha: string; hash: string; log: string }> {
    const sha = await this.pushEmptyCommit(repo, message);
    const run = await this.runLog(repo, sha);
    if (run.conclusion !== "success") throw new Error(`the workflow run of ${sha} ended ${run.conclusion}: ${run.log}`);
    return { sha, hash: VAULT.hashIn(run.log), log: run.log };
  }

  async cloneHistory(name: string, cloneUrl: string): Promise<string[]> {
    const out = await this.asOperator(`rm -rf clone-check && ${this.git(`clone -q ${shq(cloneUrl)} clone-check`)} && git -C clone-check log --format=%H && rm -rf clone-check`);
    return out.split("\n").filter((l) => l !== "");
  }
}

/**
 * An Actions secret and a workflow that prints a hash of it, never the value: the secret still
 * decrypts (Gitea's keys survived) when a run prints the same hash.
 */
const VAULT_WORKFLOW = `on: [push]
jobs:
  read-secret:
    runs-on: debian-local
    steps:
      - run: echo "vault-hash $(printf '%s' "$VAULT" | sha256sum | cut -c1-16)"
        env:
          VAULT: \${{ secrets.VAULT_TOKEN }}
`;

export const VAULT = {
  secret: "correct horse $battery 'staple'",
  hash: createHash("sha256").update("correct horse $battery 'staple'").digest("hex").slice(0, 16),
  workflow: VAULT_WORKFLOW,
  /**
   * The same, and a clone of the repository over https by the job itself (Gitea's URL from the
   * run, the job's token): the job container must trust Gitea's certificate.
   */
  workflowCloningOverHttps: `${VAULT_WORKFLOW}      - run: |
          host=\${SERVER#https://}
          # gitea.test is a name of the VM's /etc/hosts, which job containers do not share: git
          # is told its address, and still checks the certificate against the name.
          git -c "http.curloptResolve=$host:127.0.0.1" clone --quiet "https://job:$TOKEN@$host/$REPO.git" /tmp/clone
          echo "cloned-over-https $(git -C /tmp/clone rev-parse HEAD)"
        env:
          TOKEN: \${{ github.token }}
          SERVER: \${{ github.server_url }}
          REPO: \${{ github.repository }}
`,
  /** The commit a run's https clone checked out (or what it printed instead). */
  clonedIn(log: string): string {
    return /cloned-over-https ([0-9a-f]{40})/.exec(log)?.[1] ?? `no clone in the log: ${log}`;
  },
  /** The hash a run's log printed (or what it printed instead). */
  hashIn(log: string): string {
    return /vault-hash ([0-9a-f]{16})/.exec(log)?.[1] ?? `no hash in the log: ${log}`;
  },
};
