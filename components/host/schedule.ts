/**
 * A tool's subcommand run on a schedule: a systemd user timer of the rootless user, or on OpenRC
 * a script in cron's periodic directory (busybox crond). The backups and the off-site check are
 * both scheduled this way; this is their rendering, install, probe and comparison, once.
 */
import { ConfigError } from "./configError";
import type { Facts } from "./probeSession";
import { Bash, fileDigest, installContent, sh, ShellVars, shq } from "../render/shell";
import { IniEntries, renderIni, unit } from "../render/unitFile";

/** OpenRC hosts know only cron's periodic directories. */
export const PERIODIC_SCHEDULES = ["hourly", "daily", "weekly", "monthly"] as const;

/** The schedule as the decided platform can run it; an OpenRC host knows only cron's periodic names (a preview error). */
export function checkScheduleFor(platform: { init: "systemd" | "openrc"; osId: string }, schedule: string, key: "backupSchedule" | "offsiteCheck" = "backupSchedule"): string {
  if (platform.init !== "systemd" && schedule !== "off" && !(PERIODIC_SCHEDULES as readonly string[]).includes(schedule)) {
    throw new ConfigError([`gitea-homelab:${key}: on an OpenRC host (${platform.osId}) it must be one of ${PERIODIC_SCHEDULES.join(", ")} or off (cron's periodic directories), not ${JSON.stringify(schedule)}`]);
  }
  return schedule;
}

/** Where systemd user units live, in the rootless user's home. */
export const USER_UNIT_DIR = ".config/systemd/user";

export interface ToolSchedule {
  init: "systemd" | "openrc";
  user: string;
  /** The config key that sets `schedule`, named in messages. */
  key: string;
  /** A systemd calendar time, one of PERIODIC_SCHEDULES (OpenRC), or "off". */
  schedule: string;
  /** NAME.service and NAME.timer; the periodic script is NAME-USER. */
  name: string;
  /** What it does, for the units' descriptions ("Gitea backup"). */
  description: string;
  tool: string;
  /** The subcommand and its arguments, literal words. */
  args: string[];
  /** Spread the timer's runs (systemd RandomizedDelaySec), e.g. "1h". */
  randomizedDelay?: string;
}

export const serviceName = (s: Pick<ToolSchedule, "name">) => `${s.name}.service`;
export const timerName = (s: Pick<ToolSchedule, "name">) => `${s.name}.timer`;
export const periodicName = (s: Pick<ToolSchedule, "name" | "user">) => `${s.name}-${s.user}`;
export function periodicPath(s: Pick<ToolSchedule, "name" | "user" | "schedule">): string {
  return `/etc/periodic/${s.schedule}/${periodicName(s)}`;
}

export function renderScheduleService(s: Pick<ToolSchedule, "description" | "tool" | "args">): string {
  return renderIni([
    { name: "Unit", entries: [["Description", unit.text(`${s.description} (gitea-homelab)`)]] },
    // A failure stays in the user's journal: journalctl --user -u NAME.service
    { name: "Service", entries: [["Type", unit.literal("oneshot")], ["ExecStart", unit.command([s.tool, ...s.args].map(unit.execWord))]] },
  ]);
}

export function renderScheduleTimer(s: Pick<ToolSchedule, "description" | "schedule" | "randomizedDelay">): string {
  const timer: IniEntries = [
    ["OnCalendar", unit.text(s.schedule)],
    // A run missed while the host was off comes at the next boot.
    ["Persistent", unit.literal("true")],
    ...(s.randomizedDelay === undefined ? [] : ([["RandomizedDelaySec", unit.text(s.randomizedDelay)]] as IniEntries)),
  ];
  return renderIni([
    { name: "Unit", entries: [["Description", unit.text(`${s.description} schedule (gitea-homelab)`)]] },
    { name: "Timer", entries: timer },
    { name: "Install", entries: [["WantedBy", unit.literal("timers.target")]] },
  ]);
}

/** busybox crond runs /etc/periodic/SCHEDULE/* (run-parts: the name has no dot). */
export function renderSchedulePeriodic(s: Pick<ToolSchedule, "tool" | "args">): string {
  return `#!/bin/sh\n# Managed by gitea-homelab: edits are overwritten by \`pulumi up\`.\nexec ${shq(s.tool)} ${s.args.join(" ")}\n`;
}

/** The variables `scheduleInstall` and the calendar check read (prefixed sched_), for the script's `vars`; EXAMPLE: calendar times for messages. */
export function scheduleVars(s: ToolSchedule, example: string): ShellVars {
  return {
    ...scheduleRemoveVars(s),
    sched_key: s.key,
    sched_example: example,
    sched_schedule: s.schedule,
    sched_periodic_script: s.init === "systemd" || s.schedule === "off" ? "" : periodicPath(s),
  };
}

/** The variables SCHEDULE_REMOVE reads. */
export function scheduleRemoveVars(s: Pick<ToolSchedule, "init" | "name" | "user">): ShellVars {
  return { ...scheduleProbeVars(s), sched_init: s.init };
}

/** The systemd calendar check, first in a script, before anything changes. */
export const SCHEDULE_CALENDAR_CHECK: Bash = sh`
if [[ $sched_init == systemd && $sched_schedule != off ]]; then
  systemd-analyze calendar "$sched_schedule" >/dev/null 2>&1 ||
    die "gitea-homelab:$sched_key: systemd does not understand '$sched_schedule' as a calendar time (see 'man systemd.time'; e.g. $sched_example)"
fi`;

/** Installs the schedule (the script's tmp, home and group are set). */
export function scheduleInstall(s: ToolSchedule): Bash {
  return sh`
if [[ $sched_init == systemd ]]; then
  as_user "$sched_user" mkdir -p "$home/$sched_unit_dir"
  ${installContent(renderScheduleService(s), sh`"$home/$sched_unit_dir/$sched_service"`, sh`644`, sh`"$sched_user"`, sh`"$group"`)}
  ${s.schedule === "off" ? sh`rm -f "$home/$sched_unit_dir/$sched_timer"` : installContent(renderScheduleTimer(s), sh`"$home/$sched_unit_dir/$sched_timer"`, sh`644`, sh`"$sched_user"`, sh`"$group"`)}
  userctl "$sched_user" daemon-reload
  if [[ $sched_schedule == off ]]; then
    userctl "$sched_user" disable --now --quiet "$sched_timer" 2>/dev/null || true
  else
    userctl "$sched_user" enable --quiet "$sched_timer"
    converge_service "$sched_timer" userctl "$sched_user" >/dev/null
  fi
else
  for periodic_dir in /etc/periodic/*/; do
    [[ $periodic_dir$sched_periodic_name == "$sched_periodic_script" ]] || rm -f "$periodic_dir$sched_periodic_name"
  done
  if [[ -n $sched_periodic_script ]]; then
    ${installContent(renderSchedulePeriodic(s), sh`"$sched_periodic_script"`, sh`755`, sh`root`, sh`root`)}
    rc-update add crond default >/dev/null
    rc-service crond status >/dev/null 2>&1 || rc-service crond start >/dev/null
  fi
fi`;
}

/** Removes the schedule (destroy); the script's home may be unset when the account is gone. */
export const SCHEDULE_REMOVE: Bash = sh`
if [[ $sched_init == systemd ]] && home=$(home_of "$sched_user"); then
  userctl "$sched_user" disable --now --quiet "$sched_timer" 2>/dev/null || true
  rm -f "$home/$sched_unit_dir/$sched_timer" "$home/$sched_unit_dir/$sched_service"
  userctl "$sched_user" daemon-reload 2>/dev/null || true
fi
rm -f /etc/periodic/*/"$sched_periodic_name"`;

/** Probe lines (after user_info set user_uid and user_home): the units, the timer's state, the periodic scripts, crond. */
export function scheduleProbeVars(s: Pick<ToolSchedule, "name" | "user">): ShellVars {
  return { sched_unit_dir: USER_UNIT_DIR, sched_service: serviceName(s), sched_timer: timerName(s), sched_periodic_name: periodicName(s), sched_user: s.user };
}
export const SCHEDULE_PROBE: Bash = sh`
if [[ $host_init == systemd ]]; then
  echo "service_unit=$(file_digest "$user_home/$sched_unit_dir/$sched_service")"
  echo "timer_unit=$(file_digest "$user_home/$sched_unit_dir/$sched_timer")"
  if user_manager_active "$user_uid"; then echo manager=active; else echo manager=inactive; fi
  user_unit_state "$sched_user" "$user_uid" "$sched_timer" timer_
else
  for script in /etc/periodic/*/"$sched_periodic_name"; do
    [[ -e $script ]] && echo "periodic.$(basename "$(dirname "$script")")=$(file_digest "$script")"
  done
  if rc-update show default 2>/dev/null | grep -qE "^ *crond \\|"; then echo crond=enabled; else echo crond=disabled; fi
fi`;

/** How the schedule on the host differs from the rendered one. */
export function scheduleDrift(s: ToolSchedule, facts: Facts, what: string): string[] {
  const drift: string[] = [];
  if (s.init === "systemd") {
    const timer = `timer ${timerName(s)}`;
    if (facts.service_unit !== fileDigest(renderScheduleService(s))) drift.push(`unit ${serviceName(s)}: ${facts.service_unit === "missing" ? "deleted" : "edited"}`);
    if (s.schedule === "off") {
      if (facts.timer_unit !== "missing") drift.push(`${timer}: present, expected none (gitea-homelab:${s.key} is off)`);
      return drift;
    }
    if (facts.timer_unit !== fileDigest(renderScheduleTimer(s))) drift.push(`${timer}: ${facts.timer_unit === "missing" ? "deleted" : "edited"}`);
    // Without the user's manager (linger off) no timer runs; the account's own drift says why.
    if (facts.manager !== "active") return drift;
    if (facts.timer_active !== "active") drift.push(`${timer}: ${facts.timer_active || "not loaded"}, expected active`);
    if (facts.timer_enabled !== "enabled") drift.push(`${timer}: ${facts.timer_enabled || "not loaded"} at boot, expected enabled`);
    return drift;
  }
  if (s.schedule !== "off") {
    const key = `periodic.${s.schedule}`;
    if (facts[key] !== fileDigest(renderSchedulePeriodic(s))) drift.push(`${periodicPath(s)}: ${facts[key] === undefined ? "deleted" : "edited"}`);
    if (facts.crond !== "enabled") drift.push(`crond: not in the default runlevel, expected enabled (it runs ${what})`);
  }
  return drift;
}
