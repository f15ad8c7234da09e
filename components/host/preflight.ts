/**
 * The preflight, the pure half: the first command on a host. It asserts the decided init
 * system once, checks firewalld and Podman, then installs what is missing with the decided
 * package manager.
 */
import { FIREWALLD_FUNCTIONS, firewalldRunningCheck } from "../firewall/render";
import { renderScript, sh } from "../render/shell";
import { Platform, REQUIRED_TOOLS } from "./platform";

/**
 * On systemd hosts it makes network-online.target active and wanted at boot, without which
 * every start of a rootless Quadlet unit waits 90 s (podman issue 22197). On Alpine (OpenRC)
 * it enables the cgroups service and loads the tun and fuse modules, now and at boot.
 */
export function renderHostPreflightScript(platform: Platform): string {
  const packages = REQUIRED_TOOLS.map((t) => `${t.command}:${t[platform.family]}`).join(" ");
  return renderScript(
    {
      purpose: "Host preflight: check the host, then install Podman and its helpers.",
      vars: {
        init: platform.init,
        package_manager: platform.packageManager,
        firewall: platform.firewall,
        require_quadlet: platform.unitStyle === "quadlet",
        packages,
      },
    },
    sh`
${FIREWALLD_FUNCTIONS}

# The platform was decided from the probe session's facts; a host that changed since fails here.
case $init in
  systemd) [[ -d /run/systemd/system ]] || die "systemd is no longer PID 1 on this host; run pulumi up again" ;;
  openrc) command -v openrc-run >/dev/null || [[ -x /sbin/openrc-run ]] || die "OpenRC (openrc-run) is gone from this host; run pulumi up again" ;;
esac

if [[ $firewall == firewalld ]]; then
  command -v firewall-cmd >/dev/null || die "firewalld is not installed; install it or set gitea-homelab:firewall to none"
  ${firewalldRunningCheck()}
fi

podman_too_old() {
  local version
  version=$(podman --version | awk '{print $3}')
  [[ $(printf '%s\n' 4.4.0 "$version" | sort -V | head -n1) != 4.4.0 ]]
}
if [[ $require_quadlet == true ]] && command -v podman >/dev/null && podman_too_old; then
  die "Podman $(podman --version | awk '{print $3}') has no Quadlet (needs 4.4+); set gitea-homelab:unitStyle to service"
fi

missing=()
for tool in $packages; do
  IFS=: read -r cmd pkg <<<"$tool"
  if [[ -n $pkg ]] && ! command -v "$cmd" >/dev/null; then missing+=("$pkg"); fi
done
if ((\${#missing[@]} > 0)); then
  echo "installing: \${missing[*]}"
  install_packages "$package_manager" "\${missing[@]}"
fi

if [[ $init == openrc ]]; then
  # Rootless Podman needs the cgroups service, and tun (pasta) and fuse (fuse-overlayfs).
  rc-update add cgroups >/dev/null
  rc-service cgroups status >/dev/null 2>&1 || rc-service cgroups start
  for module in tun fuse; do
    modprobe "$module" 2>/dev/null || [[ -d /sys/module/$module ]] || die "cannot load the $module kernel module"
    grep -qxF "$module" /etc/modules 2>/dev/null || echo "$module" >>/etc/modules
  done
elif ! systemctl is-active --quiet network-online.target; then
  echo "network-online.target was inactive: making it wanted at boot and starting it"
  systemctl add-wants multi-user.target network-online.target
  timeout 300 systemctl start network-online.target
fi
echo "host ready: $(podman --version)"
`,
  );
}

/** Run last on destroy: this stack's drift records go with the resources they describe. */
export function renderHostCleanupScript(records: string): string {
  return renderScript({ purpose: "Remove this stack's drift records from this host.", vars: { records } }, sh`
rm -rf "$records"
rmdir --ignore-fail-on-non-empty "$(dirname "$records")" 2>/dev/null || true
echo "drift records removed"
`);
}
