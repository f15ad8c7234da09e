import { describe, expect, it } from "vitest";
import { renderClosePortScript, renderOpenPortScript } from "../../components/firewall/render";
import { renderAdminScript, renderHealthScript, renderImageScript } from "../../components/gitea/render";
import { renderGiteaQuadlet, renderGiteaService } from "../../components/giteaService/render";
import { renderHostPreflightScript } from "../../components/host/preflight";
import { renderVolumeCreateScript, renderVolumeDeleteScript } from "../../components/volume/render";
import { heredoc } from "../../components/render/shell";
import { unit } from "../../components/render/unitFile";
import { ALPINE, BACKUP_SPEC, CONTAINER_SPEC, FEDORA } from "../helpers/fixtures";
import { expectCleanScript } from "../helpers/scripts";
import { ScriptSandbox } from "../helpers/scriptSandbox";
import { renderRootlessUserDeleteScript, renderRootlessUserScript } from "../../components/rootlessUser/render";
import { renderUnitInstallScript, renderUnitRemoveScript } from "../../components/giteaService/render";
import { renderKeysDeleteScript, renderKeysScript } from "../../components/keys/render";
import { healthTarget, renderAcmeCheckScript, renderAcmeSetupScript, renderGivenCertificateScript, renderOwnCaInstallScript, renderTlsDeleteScript, renderTlsTool, TlsSpec } from "../../components/tls/render";
import {
  BackupInstallSpec,
  backupToolPath,
  renderBackupInstallScript,
  renderBackupRemoveScript,
  renderBackupTool,
  renderRestoreScript,
  renderUpgradeScript,
  upgradeStatePath,
} from "../../components/backup/render";
import { OffsiteInstallSpec, renderOffsiteInstallScript, renderOffsiteRemoveScript, renderOffsiteRestoreScript } from "../../components/offsite/render";

const SPEC = CONTAINER_SPEC;
const TLS: TlsSpec = { init: "systemd", user: "rootless", service: "gitea.service", publicHost: "git.o'brien.example" };
const TLS_OPENRC: TlsSpec = { ...TLS, init: "openrc", service: "gitea", publicHost: "2001:db8::7" };
const HOSTILE_BACKUP_SPEC: BackupInstallSpec = {
  ...BACKUP_SPEC,
  backupDir: "/var/backups/it's $here",
  healthTimeoutSeconds: 300,
  offsite: { repository: "sftp://o'brien@nas.lan:2222//srv/$HOME restic", backend: "sftp", keep: ["--keep-daily", "7"] },
};
const OFFSITE: OffsiteInstallSpec = {
  init: "systemd",
  packageManager: "dnf",
  user: "rootless",
  tool: backupToolPath("rootless"),
  backend: "sftp",
  check: "Sun *-*-* 05:00",
  knownHosts: "gitea-homelab-offsite ssh-ed25519 AAAA'$(x)",
  caCertificate: "-----BEGIN CERTIFICATE-----\n'$x\n-----END CERTIFICATE-----",
};

/** Every script the server stack can send, rendered with awkward values. */
const SCRIPTS: Record<string, string> = {
  preflight: renderHostPreflightScript(FEDORA),
  preflightAlpine: renderHostPreflightScript(ALPINE),
  user: renderRootlessUserScript(FEDORA, "rootless", 120),
  userDelete: renderRootlessUserDeleteScript(FEDORA, "rootless", true),
  volume: renderVolumeCreateScript("rootless", "gitea-data"),
  volumeDelete: renderVolumeDeleteScript("rootless", "gitea-data"),
  image: renderImageScript("rootless", SPEC.image, "/opt/images/gitea.tar"),
  unitQuadlet: renderUnitInstallScript({ user: "rootless", name: "gitea", style: "quadlet", content: renderGiteaQuadlet(SPEC), hasEnvironment: true }),
  unitService: renderUnitInstallScript({ user: "rootless", name: "gitea", style: "service", content: renderGiteaService(SPEC), hasEnvironment: false }),
  unitRemove: renderUnitRemoveScript({ user: "rootless", name: "gitea", style: "quadlet" }),
  health: renderHealthScript({ init: "systemd", user: "rootless", service: "gitea.service", logFile: "/var/log/gitea-homelab/gitea.log", health: healthTarget("own-ca", "gitea.example.com", 4111), timeoutSeconds: 300, image: SPEC.image, backupTool: backupToolPath("rootless"), upgradeStateFile: upgradeStatePath("rootless") }),
  upgrade: renderUpgradeScript({ tool: backupToolPath("rootless"), image: SPEC.image, allowDowngrade: false }),
  keys: renderKeysScript({ user: "rootless", dataVolume: "gitea-data", legacyEnvFile: ".config/gitea-homelab/gitea.env" }),
  keysDelete: renderKeysDeleteScript("rootless"),
  backupTool: renderBackupTool(HOSTILE_BACKUP_SPEC),
  backupToolOpenrc: renderBackupTool({ ...HOSTILE_BACKUP_SPEC, init: "openrc", unitStyle: "openrc" }),
  backupInstall: renderBackupInstallScript({ ...HOSTILE_BACKUP_SPEC, schedule: "Sun *-*-* 04:00:00" }),
  backupInstallOff: renderBackupInstallScript({ ...HOSTILE_BACKUP_SPEC, schedule: "off" }),
  backupInstallOpenrc: renderBackupInstallScript({ ...HOSTILE_BACKUP_SPEC, init: "openrc", unitStyle: "openrc", schedule: "weekly" }),
  backupRemove: renderBackupRemoveScript({ init: "systemd", user: "rootless", destroyData: true }),
  restore: renderRestoreScript("rootless", "/var/backups/gitea homelab/gitea-backup-x"),
  offsiteInstall: renderOffsiteInstallScript(OFFSITE),
  offsiteInstallS3Off: renderOffsiteInstallScript({ ...OFFSITE, backend: "s3", check: "off", knownHosts: "", packageManager: "apt" }),
  offsiteInstallOpenrc: renderOffsiteInstallScript({ ...OFFSITE, init: "openrc", packageManager: "apk", check: "weekly" }),
  offsiteRemove: renderOffsiteRemoveScript({ init: "systemd", user: "rootless", tool: backupToolPath("rootless") }),
  offsiteRestore: renderOffsiteRestoreScript(backupToolPath("rootless"), "4bd2a3f1"),
  admin: renderAdminScript({ user: "rootless", containerName: "gitea", username: "gitea-admin", email: "o'brien@example.com" }),
  tlsTool: renderTlsTool(TLS),
  tlsToolOpenrc: renderTlsTool(TLS_OPENRC),
  tlsOwnCaInstall: renderOwnCaInstallScript(TLS),
  tlsOwnCaInstallOpenrc: renderOwnCaInstallScript(TLS_OPENRC),
  tlsGiven: renderGivenCertificateScript(TLS),
  tlsGivenOpenrc: renderGivenCertificateScript(TLS_OPENRC),
  tlsDelete: renderTlsDeleteScript(TLS, true),
  tlsDeleteOpenrc: renderTlsDeleteScript(TLS_OPENRC, false),
  tlsAcmeSetup: renderAcmeSetupScript(TLS),
  tlsAcmeSetupOpenrc: renderAcmeSetupScript(TLS_OPENRC),
  tlsAcmeCheck: renderAcmeCheckScript({ ...TLS, httpPort: 4111, logFile: "/var/log/gitea-homelab/gitea.log", timeoutSeconds: 600 }),
  tlsAcmeCheckOpenrc: renderAcmeCheckScript({ ...TLS_OPENRC, publicHost: "git.example.com", httpPort: 443, logFile: "/var/log/gitea-homelab/gitea.log", timeoutSeconds: 600 }),
  portOpen: renderOpenPortScript({ port: 4111, protocol: "tcp" }),
  portClose: renderClosePortScript({ port: 4111, protocol: "tcp", zone: "FedoraServer" }),
};

describe("generated scripts", () => {
  it.each(Object.entries(SCRIPTS))("%s is strict, marked as managed, and passes bash -n and shellcheck", (_name, script) => {
    expectCleanScript(script);
  });

  it.each(Object.entries(SCRIPTS).filter(([name]) => !name.startsWith("preflight")))("%s detects no platform fact again: the host decided them once", (_name, script) => {
    expect(script).not.toContain("/run/systemd/system");
    expect(script).not.toContain("os-release");
    expect(script).not.toMatch(/^[^#\n]*firewall-cmd --(state|get-default-zone)/m);
  });

  it("the sandbox takes a script that leaves its stdin unread for a finished one, not a timeout (EPIPE)", () => {
    const sandbox = new ScriptSandbox();
    try {
      const run = sandbox.runBash("#!/usr/bin/env bash\nexit 0\n", "x".repeat(200_000), "absent");
      expect([run.status, run.timedOut]).toEqual([0, false]);
    } finally {
      sandbox.dispose();
    }
  });

  it("runs the unit script's heredoc verbatim, so the file on the host is what was rendered", () => {
    // The unit file in the install script must be byte-for-byte the rendered one.
    const content = renderGiteaQuadlet(SPEC);
    expect(SCRIPTS.unitQuadlet).toContain(content);
  });
});
