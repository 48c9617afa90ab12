# SPDX-License-Identifier: BSD-3-Clause
# Copyright (c) 2026 The ibvhostd authors
#
# bash completion for ibvhostctl(8); installed as
# DATADIR/bash-completion/completions/ibvhostctl.
#
# The words come from ibvhostctl itself (--complete): the commands and
# their usage from the running daemon's list-commands (ibvhostctl's own
# table when no daemon answers), port names from its show-ports. The
# usage says what an argument is: NAME or PORT (a port name, also in
# brackets when optional), a|b|c (one of these words). -s/--socket on the
# line being completed is passed on, so another daemon's words come back.

_ibvhostctl()
{
	local cur=${COMP_WORDS[COMP_CWORD]} prev=
	local prog=${COMP_WORDS[0]} cmd= cmd_i=0 i w
	local -a sock=() usage=()
	COMPREPLY=()
	((COMP_CWORD > 0)) && prev=${COMP_WORDS[COMP_CWORD - 1]}

	for ((i = 1; i < COMP_CWORD; i++)); do
		w=${COMP_WORDS[i]}
		case $w in
		-s | --socket)
			((i++))
			((i < COMP_CWORD)) && sock=(-s "${COMP_WORDS[i]}")
			;;
		-s?*) sock=(-s "${w#-s}") ;;
		-*) ;;
		*)
			cmd=$w
			cmd_i=$i
			break
			;;
		esac
	done

	if [[ -z $cmd ]]; then
		case $prev in
		-s | --socket)
			COMPREPLY=($(compgen -f -- "$cur"))
			return
			;;
		esac
		if [[ $cur == -* ]]; then
			COMPREPLY=($(compgen -W '-s --socket -j --json -h --help
				-V --version' -- "$cur"))
		else
			COMPREPLY=($(compgen -W "$("$prog" "${sock[@]}" \
				--complete commands 2>/dev/null | cut -f1)" -- "$cur"))
		fi
		return
	fi

	# The usage of the command, split into its argument words without
	# pathname expansion ("[PORT]" is a glob).
	read -r -a usage <<<"$("$prog" "${sock[@]}" --complete commands \
		2>/dev/null | awk -F '\t' -v c="$cmd" '$1 == c { print $2; exit }')"
	w=${usage[COMP_CWORD - cmd_i - 1]-}
	w=${w#[}
	w=${w%]}
	case $w in
	NAME | PORT)
		COMPREPLY=($(compgen -W "$("$prog" "${sock[@]}" \
			--complete ports 2>/dev/null)" -- "$cur"))
		;;
	*'|'*)
		COMPREPLY=($(compgen -W "${w//|/ }" -- "$cur"))
		;;
	esac
}

complete -F _ibvhostctl ibvhostctl
