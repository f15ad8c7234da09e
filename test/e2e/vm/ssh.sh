#!/usr/bin/env bash
# Run a command in the test VM of RUNDIR as operator, with the pinned host key.
# Like ssh, the words of the command are joined by spaces and run by the
# remote shell; no command opens a login shell. Usage: ssh.sh RUNDIR [cmd...]
set -euo pipefail

if [[ $# -lt 1 ]]; then
	echo "usage: $0 RUNDIR [cmd...]" >&2
	exit 2
fi
rundir=$1
shift
if [[ ! -f $rundir/ssh_config || ! -f $rundir/vm.env ]]; then
	echo "ssh.sh: no running VM in $rundir (start-vm.sh first)" >&2
	exit 1
fi
if [[ $# -eq 0 && -t 0 ]]; then
	exec ssh -F "$rundir/ssh_config" -t gitea-vm
fi
exec ssh -F "$rundir/ssh_config" gitea-vm "$@"
