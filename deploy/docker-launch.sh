#!/usr/bin/env bash
# docker-launch.sh runs the byoda pod in a Docker container on this host.
#
# Its settings come from one file of NAME=VALUE lines, /etc/byoda/config.env
# unless --config names another; deploy/config.env.example describes every
# setting. The same file is systemd's EnvironmentFile for deploy/byoda-pod.service
# and docker compose's env_file for deploy/compose.yaml. From the settings the
# script works out which ports to publish and which host directories to mount,
# then replaces the running container with a new one. docs/deploy.md is the guide.
#
# Secrets never appear on a command line or in the script's output: the
# container gets them as `-e NAME`, which docker fills in from the script's
# environment.
set -euo pipefail
shopt -s nullglob

prog=docker-launch.sh

usage() {
	cat <<'EOF'
usage: docker-launch.sh [options]

Runs the byoda pod in a Docker container, with the settings of a config file.

options:
  -c, --config FILE     the settings file [$BYODA_CONFIG, else /etc/byoda/config.env]
  -n, --dry-run         check the settings and print the commands it would run
                        (docker stop/rm, wipes, mkdir/chown, docker run); change nothing
  -t, --tag TAG         run this tag of the image [the file's TAG, else latest]
  -y, --yes             wipe without asking
      --wipe-all        remove all of the pod's data, keys and account first: the pod
                        starts as a new account; logs go too unless --keep-logs
      --wipe-memberships
                        remove every membership (keys, certificates, data) first; the
                        pod joins JOIN_SERVICE_IDS again as a new member
      --wipe-member-data
                        remove the data of every membership first, keeping the
                        memberships
      --wipe-logs       remove the pod's log files first
      --keep-logs       keep the log files with --wipe-all
  -h, --help            show this text

Logs and everything else are kept unless a --wipe option says otherwise.
EOF
}

die() {
	printf '%s: %s\n' "$prog" "$1" >&2
	exit "${2:-1}"
}

note() { printf '%s: %s\n' "$prog" "$*" >&2; }
warn() { printf '%s: warning: %s\n' "$prog" "$*" >&2; }

# Settings handed to the pod unchanged when the file sets them, in the order
# of the docker run command.
pod_settings=(
	NETWORK ACCOUNT_ID ACCOUNT_USERNAME ACCOUNT_SECRET PRIVATE_KEY_SECRET
	LOGLEVEL LOG_MAX_TOTAL JOIN_SERVICE_IDS
	DIRECTORY_URL DNS_SERVER NETWORK_ROOT_CA
	HTTPS_PORT POD_PORT SERVICE_PORT
	SHARED_WEBSERVER HTTP_PORT TRUSTED_PROXIES HOST_ROOT_DIR
	CUSTOM_DOMAIN MANAGE_CUSTOM_DOMAIN_CERT ACME_DIRECTORY_URL ACME_ROOT_CA ACME_EMAIL
	ACME_HTTP_PORT
)

# Directories the container sees at the same path as the host, so that paths
# in logs and in the web server's vhost files mean the same on both sides.
path_settings=(ROOT_DIR LOGDIR WEBSERVER_CONF_DIR LETSENCRYPT_DIRECTORY)

# Settings of this script alone. BYODA_ROOT_DIR and LOCAL_WWWROOT_DIRECTORY
# are the names of the Python pod's launch script; BIND_ADDRESS is the host
# address the ports are published on; the web server commands are refused,
# as the container has no web server to run them on.
launch_settings=(
	BYODA_ROOT_DIR LOCAL_WWWROOT_DIRECTORY IMAGE TAG CONTAINER_NAME POD_USER
	BIND_ADDRESS WEBSERVER_RELOAD_COMMAND WEBSERVER_TEST_COMMAND DEBUG
)

# Settings of the Python pod that this pod has no use for.
python_settings=(
	CLOUD PRIVATE_BUCKET RESTRICTED_BUCKET PUBLIC_BUCKET BACKUP_INTERVAL
	AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY YOUTUBE_CHANNEL YOUTUBE_API_KEY
	YOUTUBE_IMPORT_INTERVAL YOUTUBE_IMPORT_SERVICE_ID TWITTER_API_KEY TWITTER_KEY_SECRET
	TWITTER_USERNAME WORKER_LOGLEVEL BOOTSTRAP DB_CONNECTION HOST_IP
	WORKERS DAEMONIZE POSTGRES_PASSWORD CDN_APP_ID CDN_FQDN CDN_ORIGIN_SITE_ID
	MODERATION_FQDN MODERATION_APP_ID LOG_REQUESTS TRACE_SERVER POD_MEMORY_LIMIT
	WEB_LOG_DIR
)

# The address the pod sees connections through a port published on the
# host's loopback come from: the gateway of docker's default bridge.
docker_gateway=172.17.0.1

# Directories never to own or wipe: a typo in ROOT_DIR or LOGDIR must not
# chown or empty the system.
system_dirs=" / /bin /boot /dev /etc /home /lib /lib32 /lib64 /media /mnt /opt /proc /root
	/run /sbin /srv /sys /tmp /usr /usr/local /var /var/lib /var/log /var/tmp /var/www "

config=${BYODA_CONFIG:-/etc/byoda/config.env}
dry_run=0 assume_yes=0 tag_flag=""
wipe_all=0 wipe_memberships=0 wipe_member_data=0 wipe_logs=0 keep_logs=0

parse_args() {
	while [ $# -gt 0 ]; do
		case "$1" in
		-c | --config)
			[ $# -ge 2 ] || die "$1 needs a file name" 2
			config=$2
			shift
			;;
		--config=*) config=${1#*=} ;;
		-n | --dry-run) dry_run=1 ;;
		-t | --tag)
			[ $# -ge 2 ] || die "$1 needs a tag" 2
			tag_flag=$2
			shift
			;;
		--tag=*) tag_flag=${1#*=} ;;
		-y | --yes) assume_yes=1 ;;
		--wipe-all) wipe_all=1 ;;
		--wipe-memberships) wipe_memberships=1 ;;
		--wipe-member-data) wipe_member_data=1 ;;
		--wipe-logs) wipe_logs=1 ;;
		--keep-logs) keep_logs=1 ;;
		-h | --help)
			usage
			exit 0
			;;
		*) die "unknown option $1 (see --help)" 2 ;;
		esac
		shift
	done
}

# cfg holds the file's settings; a name is set when it is a key, even with
# an empty value, because MANAGE_CUSTOM_DOMAIN_CERT= means something.
declare -A cfg=()
errs=()

is_set() { [ -n "${cfg[$1]+x}" ]; }
get() { printf '%s' "${cfg[$1]-}"; }
in_list() {
	local want=$1 x
	shift
	for x in "$@"; do
		[ "$x" = "$want" ] && return 0
	done
	return 1
}

# read_config parses the settings file. It is read, never sourced: the file
# holds secrets and is shared with systemd and compose, which do not run it
# as a shell script either.
read_config() {
	[ -e "$config" ] || die "the settings file $config does not exist: copy
  deploy/config.env.example there, set PRIVATE_KEY_SECRET in it and chmod 600 it,
  or name another file with --config"
	[ -f "$config" ] || die "the settings file $config is not a regular file"
	[ -r "$config" ] || die "the settings file $config is not readable by $(id -un)"

	local mode
	mode=$(stat -c %a -- "$config")
	if ((8#$mode & 8#077)); then
		die "the settings file $config holds PRIVATE_KEY_SECRET and is readable by other
  users of this host (mode $mode): chmod 600 $config"
	fi

	local line n=0 name raw value
	while IFS= read -r line || [ -n "$line" ]; do
		n=$((n + 1))
		line=${line%$'\r'}
		[[ $line =~ ^[[:space:]]*(#.*)?$ ]] && continue
		if [[ $line =~ ^[[:space:]]*export[[:space:]]+(.*)$ ]]; then
			warn "$config:$n: 'export' is not needed, and systemd's EnvironmentFile does not take it"
			line=${BASH_REMATCH[1]}
		fi
		if ! [[ $line =~ ^[[:space:]]*([A-Za-z_][A-Za-z0-9_]*)=(.*)$ ]]; then
			errs+=("$config:$n: expected NAME=VALUE")
			continue
		fi
		name=${BASH_REMATCH[1]}
		raw=${BASH_REMATCH[2]}
		if ! value=$(unquote "$raw"); then
			errs+=("$config:$n: $name: $value")
			continue
		fi
		check_name "$name" "$n" || continue
		check_portable "$name" "$n" "$raw"
		is_set "$name" && warn "$config:$n: $name is set again; this value counts"
		cfg[$name]=$value
	done <"$config"
}

# unquote returns a value without surrounding blanks and without one pair of
# matching quotes, which systemd and compose remove too. Inside quotes every
# character is taken as it is.
unquote() {
	local v=$1
	v=${v#"${v%%[![:space:]]*}"}
	v=${v%"${v##*[![:space:]]}"}
	if [[ $v =~ ^\'(.*)\'$ ]] || [[ $v =~ ^\"(.*)\"$ ]]; then
		printf '%s' "${BASH_REMATCH[1]}"
		return 0
	fi
	if [[ $v =~ [[:space:]]# ]]; then
		printf "systemd would take the comment after the value as part of it; put the comment on its own line"
		return 1
	fi
	if [[ $v == [\'\"]* ]]; then
		printf "the value's quotes do not match"
		return 1
	fi
	printf '%s' "$v"
}

# check_portable warns of a value that the file's other readers would take
# differently: compose expands '$' outside single quotes, and systemd reads
# backslashes as escapes.
check_portable() {
	local name=$1 n=$2 raw=$3
	raw=${raw#"${raw%%[![:space:]]*}"}
	if [[ $raw != \'*\' && $raw == *\$* ]]; then
		warn "$config:$n: docker compose would expand the '\$' in $name; put the value in single quotes"
	fi
	if [[ $raw == *\\* ]]; then
		warn "$config:$n: systemd reads the backslash in $name as an escape; avoid backslashes"
	fi
	return 0
}

# check_name accepts the names the script knows and says what happens to
# the others.
check_name() {
	local name=$1 n=$2
	if in_list "$name" "${pod_settings[@]}" "${path_settings[@]}" "${launch_settings[@]}"; then
		return 0
	fi
	if in_list "$name" "${python_settings[@]}"; then
		note "$config:$n: $name is a setting of the Python pod that this pod does not have; ignored"
	else
		warn "$config:$n: $name is not a setting of the pod or of $prog; ignored (a typo?)"
	fi
	return 1
}

# Derived settings, filled in by derive.
root_dir="" log_dir="" conf_dir="" le_dir="" image="" tag="" name="" bind=""
pod_uid="" pod_gid="" shared=0 custom=0 manage=0 external=0
https_port="" pod_port="" http_port="" acme_port=""

derive() {
	secrets
	modes
	paths
	ports
	container
	if [ ${#errs[@]} -gt 0 ]; then
		printf '%s: %s cannot be used:\n' "$prog" "$config" >&2
		printf '  - %s\n' "${errs[@]}" >&2
		exit 1
	fi
}

secrets() {
	local s
	s=$(get PRIVATE_KEY_SECRET)
	if [ -z "$s" ]; then
		errs+=("PRIVATE_KEY_SECRET must be set: it is the passphrase that encrypts the pod's private keys on disk; make one with: openssl rand -base64 32")
	elif [ "$s" = changeme ]; then
		errs+=("PRIVATE_KEY_SECRET is still 'changeme': set it to a long random passphrase, such as the output of: openssl rand -base64 32")
	elif [ ${#s} -lt 16 ]; then
		warn "PRIVATE_KEY_SECRET is shorter than 16 characters: the keys on disk are only as safe as this passphrase"
	fi

	s=$(get ACCOUNT_SECRET)
	if [ "$s" = changeme ]; then
		errs+=("ACCOUNT_SECRET is still 'changeme': set it to your password, or remove the line to turn password login off")
	elif [ -z "$s" ]; then
		note "ACCOUNT_SECRET is not set: logging in with a password is off"
	fi
}

# is_off reports whether a value reads as "off" to a person but is
# non-empty, which the pod takes as "on".
is_off() { [[ ${1,,} =~ ^(0|false|no|off|n)$ ]]; }

modes() {
	local v
	v=$(get SHARED_WEBSERVER)
	if is_off "$v"; then
		errs+=("SHARED_WEBSERVER is '$v', which the pod takes as set: every non-empty value turns the shared web server on; remove the line, or leave it empty, to turn it off")
	fi
	[ -n "$v" ] && shared=1

	local label='[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?'
	[ -n "$(get CUSTOM_DOMAIN)" ] && custom=1
	if [ $custom = 1 ] && ! [[ $(get CUSTOM_DOMAIN) =~ ^($label\.)+[A-Za-z]$label$ ]]; then
		errs+=("CUSTOM_DOMAIN must be a DNS name such as pod.example.com, not '$(get CUSTOM_DOMAIN)'")
	fi

	v=$(get MANAGE_CUSTOM_DOMAIN_CERT)
	if is_off "$v"; then
		errs+=("MANAGE_CUSTOM_DOMAIN_CERT is '$v', which the pod takes as set: to use a certificate that someone else renews, set it to the empty string (MANAGE_CUSTOM_DOMAIN_CERT=)")
	fi
	if [ $custom = 1 ]; then
		if ! is_set MANAGE_CUSTOM_DOMAIN_CERT || [ -n "$v" ]; then
			manage=1
		else
			external=1
		fi
	elif is_set MANAGE_CUSTOM_DOMAIN_CERT || is_set LETSENCRYPT_DIRECTORY; then
		note "MANAGE_CUSTOM_DOMAIN_CERT and LETSENCRYPT_DIRECTORY matter only with CUSTOM_DOMAIN, which is not set"
	fi
	if [ $manage = 1 ] && is_set LETSENCRYPT_DIRECTORY; then
		note "LETSENCRYPT_DIRECTORY is not used: the pod gets the certificate of $(get CUSTOM_DOMAIN) itself (MANAGE_CUSTOM_DOMAIN_CERT)"
	fi

	local c
	for c in WEBSERVER_RELOAD_COMMAND WEBSERVER_TEST_COMMAND; do
		if [ -n "$(get $c)" ]; then
			errs+=("$c would run inside the container, which has no web server: remove it and let deploy/byoda-webserver-reload.path on the host check and reload nginx when the pod changes a vhost file")
		fi
	done
	if [ $shared = 0 ]; then
		is_set WEBSERVER_CONF_DIR && note "WEBSERVER_CONF_DIR is not used without SHARED_WEBSERVER"
		is_set TRUSTED_PROXIES && note "TRUSTED_PROXIES is not used without SHARED_WEBSERVER"
	fi

	v=$(get DEBUG)
	if [ -n "$v" ] && ! is_off "$v"; then
		if is_set LOGLEVEL; then
			note "DEBUG is a setting of the Python pod; LOGLEVEL=$(get LOGLEVEL) counts"
		else
			note "DEBUG is a setting of the Python pod; running with LOGLEVEL=DEBUG"
			cfg[LOGLEVEL]=DEBUG
		fi
	fi
	v=$(get LOGLEVEL)
	if [ -n "$v" ] && ! [[ ${v^^} =~ ^(DEBUG|INFO|WARNING|WARN|ERROR)$ ]]; then
		errs+=("LOGLEVEL must be DEBUG, INFO, WARNING or ERROR, not '$v'")
	fi
}

# check_dir checks a host directory setting: absolute, simple enough for
# docker's --mount, and not a directory of the system.
check_dir() {
	local setting=$1 dir=$2
	if [[ $dir != /* ]]; then
		errs+=("$setting must be an absolute path, not '$dir'")
	elif [[ $dir =~ [,\"\'[:cntrl:]] ]] || [[ $dir =~ (^|/)\.\.?(/|$) ]]; then
		errs+=("$setting must be a plain path without commas, quotes, '.' or '..', not '$dir'")
	fi
}

check_own_dir() {
	local setting=$1 dir=$2
	check_dir "$setting" "$dir"
	if [[ $system_dirs == *" $dir "* ]]; then
		errs+=("$setting is $dir, a directory of the system: the script would hand it to the pod's user and a wipe would empty it; use a directory of the pod's own, such as /byoda")
	fi
}

# clean_path drops a trailing slash so that paths compare as strings.
clean_path() {
	local p=$1
	while [ ${#p} -gt 1 ] && [[ $p == */ ]]; do
		p=${p%/}
	done
	printf '%s' "$p"
}

paths() {
	local a b
	a=$(get BYODA_ROOT_DIR)
	b=$(get ROOT_DIR)
	if [ -n "$a" ] && [ -n "$b" ] && [ "$(clean_path "$a")" != "$(clean_path "$b")" ]; then
		errs+=("BYODA_ROOT_DIR ($a) and ROOT_DIR ($b) differ; set only ROOT_DIR")
	fi
	root_dir=$(clean_path "${b:-${a:-/byoda}}")
	check_own_dir ROOT_DIR "$root_dir"

	a=$(get LOCAL_WWWROOT_DIRECTORY)
	log_dir=$(clean_path "$(get LOGDIR)")
	[ -n "$log_dir" ] || log_dir=$(clean_path "${a:-/var/www/wwwroot}")/logs
	check_own_dir LOGDIR "$log_dir"
	if [[ $log_dir/ == "$root_dir"/* ]] || [[ $root_dir/ == "$log_dir"/* ]]; then
		errs+=("LOGDIR ($log_dir) and ROOT_DIR ($root_dir) must not be inside each other, so that a wipe or a restore of the data leaves the logs alone")
	fi
	cfg[ROOT_DIR]=$root_dir
	cfg[LOGDIR]=$log_dir

	if [ $shared = 1 ]; then
		conf_dir=$(clean_path "$(get WEBSERVER_CONF_DIR)")
		conf_dir=${conf_dir:-/etc/nginx/conf.d}
		check_dir WEBSERVER_CONF_DIR "$conf_dir"
		cfg[WEBSERVER_CONF_DIR]=$conf_dir
	else
		unset 'cfg[WEBSERVER_CONF_DIR]'
	fi
	if [ $external = 1 ]; then
		le_dir=$(clean_path "$(get LETSENCRYPT_DIRECTORY)")
		le_dir=${le_dir:-/etc/letsencrypt}
		check_dir LETSENCRYPT_DIRECTORY "$le_dir"
		cfg[LETSENCRYPT_DIRECTORY]=$le_dir
	else
		unset 'cfg[LETSENCRYPT_DIRECTORY]'
	fi

	local f
	for f in NETWORK_ROOT_CA ACME_ROOT_CA; do
		a=$(get $f)
		[ -z "$a" ] && continue
		[ $f = NETWORK_ROOT_CA ] && is_fingerprint "$a" && continue
		check_dir $f "$a"
		[ -f "$a" ] || errs+=("$f must be a certificate file of this host (or, for NETWORK_ROOT_CA, a SHA-256 fingerprint); $a is not a file")
	done
}

is_fingerprint() {
	local hex=${1//:/}
	[[ ${#hex} = 64 && $hex =~ ^[0-9A-Fa-f]+$ ]]
}

# port sets the variable named first to a port setting or its default,
# recording an error for a bad one.
port() {
	local -n out=$1
	local setting=$2 def=$3
	out=$(get "$setting")
	out=${out:-$def}
	if ! [[ $out =~ ^[0-9]{1,5}$ ]] || ((10#$out < 1 || 10#$out > 65535)); then
		errs+=("$setting must be a port from 1 to 65535, not '$out'")
	fi
}

ports() {
	# shellcheck disable=SC2034 # SERVICE_PORT is checked here and used by the pod
	local service_port
	port https_port HTTPS_PORT 443
	port pod_port POD_PORT 444
	port http_port HTTP_PORT 8000
	port acme_port ACME_HTTP_PORT 80
	port service_port SERVICE_PORT 443

	local published=()
	if [ $shared = 0 ]; then
		published+=("$https_port" "$pod_port")
	else
		published+=("$http_port")
	fi
	[ $manage = 1 ] && published+=("$acme_port")
	if [ "$(printf '%s\n' "${published[@]}" | sort | uniq -d)" != "" ]; then
		errs+=("the ports the container publishes must differ: ${published[*]}")
	fi

	bind=$(get BIND_ADDRESS)
	if [ -n "$bind" ] && ! [[ $bind =~ ^[0-9A-Fa-f:.]+$ ]]; then
		errs+=("BIND_ADDRESS must be an IP address of this host, such as 192.0.2.10, not '$bind'")
	fi
	if [ $shared = 1 ] && ! is_set TRUSTED_PROXIES; then
		cfg[TRUSTED_PROXIES]=$docker_gateway
	elif [ $shared = 1 ] && [ -z "$(get TRUSTED_PROXIES)" ]; then
		warn "TRUSTED_PROXIES is empty: the pod believes the client certificate headers of no web server, so other pods cannot reach it"
	fi
}

container() {
	image=$(get IMAGE)
	image=${image:-byoda/byoda-go}
	if ! [[ $image =~ ^[a-z0-9]([a-z0-9._/:-]*[a-z0-9])?$ ]]; then
		errs+=("IMAGE must be an image name such as byoda/byoda-go, without a tag, not '$image'")
	fi
	tag=${tag_flag:-$(get TAG)}
	tag=${tag:-latest}
	if ! [[ $tag =~ ^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$ ]]; then
		errs+=("the image tag must be letters, digits, '_', '.' and '-', not '$tag'")
	fi
	name=$(get CONTAINER_NAME)
	name=${name:-byoda}
	if ! [[ $name =~ ^[A-Za-z0-9][A-Za-z0-9_.-]*$ ]]; then
		errs+=("CONTAINER_NAME must be letters, digits, '_', '.' and '-', not '$name'")
	fi
	local user
	user=$(get POD_USER)
	user=${user:-65532:65532}
	if [[ $user =~ ^([0-9]+):([0-9]+)$ ]]; then
		pod_uid=${BASH_REMATCH[1]} pod_gid=${BASH_REMATCH[2]}
	else
		errs+=("POD_USER must be UID:GID in numbers, such as 65532:65532, not '$user'")
	fi
}

# publish returns the -p value of a port on an address, all addresses when
# it is empty.
publish() {
	local addr=$1 p=$2
	case "$addr" in
	"") printf '%s:%s' "$p" "$p" ;;
	*:*) printf '[%s]:%s:%s' "$addr" "$p" "$p" ;;
	*) printf '%s:%s:%s' "$addr" "$p" "$p" ;;
	esac
}

mount_arg() {
	printf 'type=bind,src=%s,dst=%s%s' "$1" "$1" "${2:+,$2}"
}

# run_args builds the docker run command.
run_args=()
build_run() {
	run_args=(docker run --detach --name "$name" --restart unless-stopped
		--user "$pod_uid:$pod_gid" --read-only --tmpfs /tmp --cap-drop ALL
		--security-opt no-new-privileges
		--sysctl net.ipv4.ip_unprivileged_port_start=0
		--ulimit nofile=65536:65536 --log-driver local --stop-timeout 30)

	if [ $shared = 0 ]; then
		run_args+=(--publish "$(publish "$bind" "$https_port")"
			--publish "$(publish "$bind" "$pod_port")")
	else
		# Plain HTTP that the host's web server forwards to, and whose
		# X-Client-SSL-* headers the pod believes: loopback only.
		run_args+=(--publish "$(publish 127.0.0.1 "$http_port")")
	fi
	[ $manage = 1 ] && run_args+=(--publish "$(publish "$bind" "$acme_port")")

	run_args+=(--mount "$(mount_arg "$root_dir")" --mount "$(mount_arg "$log_dir")")
	[ $shared = 1 ] && run_args+=(--mount "$(mount_arg "$conf_dir")")
	[ $external = 1 ] && run_args+=(--mount "$(mount_arg "$le_dir" readonly)")
	local f v
	for f in NETWORK_ROOT_CA ACME_ROOT_CA; do
		v=$(get $f)
		if [ -n "$v" ] && ! { [ $f = NETWORK_ROOT_CA ] && is_fingerprint "$v"; }; then
			run_args+=(--mount "$(mount_arg "$v" readonly)")
		fi
	done

	for f in "${path_settings[@]}" "${pod_settings[@]}"; do
		is_set "$f" && run_args+=(--env "$f")
	done
	# Behind the host's web server the pod listens on loopback unless told
	# otherwise, and the container's loopback is out of the host's reach.
	[ $shared = 1 ] && run_args+=(--env BIND_ADDRESS)
	run_args+=("$image:$tag" pod)
}

# pod_can tells whether the pod's user may do test's OP (-r, -w, -x) on a
# path: 0 yes, 1 no, 2 cannot tell.
pod_can() {
	local op=$1 path=$2
	if [ "$(id -u)" = "$pod_uid" ]; then
		test "$op" "$path"
	elif [ "$(id -u)" = 0 ] && command -v setpriv >/dev/null; then
		setpriv --reuid="$pod_uid" --regid="$pod_gid" --clear-groups test "$op" "$path"
	else
		return 2
	fi
}

# shell_words prints its arguments as one line that a shell reads back as
# the same words.
shell_words() {
	local a words=()
	for a in "$@"; do
		if [[ $a =~ ^[A-Za-z0-9_@%+=:,./-]+$ ]]; then
			words+=("$a")
		else
			words+=("'${a//\'/\'\\\'\'}'")
		fi
	done
	printf '%s\n' "${words[*]}"
}

# plan holds the commands to run before docker run, each a line of
# shell_words.
plan=()
add_plan() { plan+=("$(shell_words "$@")"); }

# plan_dirs makes ROOT_DIR and LOGDIR belong to the pod's user, and checks
# the directories the pod writes or reads but does not own.
plan_dirs() {
	local dir root=0
	[ "$(id -u)" = 0 ] && root=1
	for dir in "$root_dir" "$log_dir"; do
		if [ ! -e "$dir" ]; then
			if [ $root = 0 ]; then
				errs+=("$dir does not exist: create it for the pod's user with: sudo install -d -m 700 -o $pod_uid -g $pod_gid $dir")
				continue
			fi
			add_plan mkdir -p -m 0700 -- "$dir"
			[ "$pod_uid:$pod_gid" != 0:0 ] && add_plan chown -R "$pod_uid:$pod_gid" -- "$dir"
		elif [ ! -d "$dir" ]; then
			errs+=("$dir must be a directory")
		elif [ -n "$(foreign_file "$dir")" ]; then
			if [ $root = 0 ]; then
				errs+=("$dir holds files the pod's user ($pod_uid:$pod_gid) does not own: sudo chown -R $pod_uid:$pod_gid $dir, or set POD_USER")
				continue
			fi
			add_plan chown -R "$pod_uid:$pod_gid" -- "$dir"
		fi
	done

	[ $shared = 1 ] && check_conf_dir
	[ $external = 1 ] && check_le_dir
	return 0
}

# foreign_file prints a file under a directory that the pod's user does not
# own, if there is one.
foreign_file() {
	find "$1" \( ! -user "$pod_uid" -o ! -group "$pod_gid" \) -print -quit 2>/dev/null
}

check_conf_dir() {
	if [ ! -d "$conf_dir" ]; then
		errs+=("WEBSERVER_CONF_DIR $conf_dir does not exist: is nginx installed on this host? See 'The shared web server' in docs/deploy.md")
		return
	fi
	local rc=0
	pod_can -w "$conf_dir" && pod_can -x "$conf_dir" || rc=$?
	case $rc in
	1) errs+=("the pod's user ($pod_uid:$pod_gid) cannot write the vhost files in WEBSERVER_CONF_DIR $conf_dir. Give the pod a directory of its own that nginx includes:
      sudo install -d -o $pod_uid -g $pod_gid /etc/nginx/byoda
      echo 'include /etc/nginx/byoda/*.conf;' | sudo tee /etc/nginx/conf.d/byoda.conf
    and set WEBSERVER_CONF_DIR=/etc/nginx/byoda") ;;
	2) note "cannot tell whether the pod's user ($pod_uid:$pod_gid) may write $conf_dir; run as root to check" ;;
	esac
}

check_le_dir() {
	local domain live rc=0
	domain=$(get CUSTOM_DOMAIN)
	live=$le_dir/live/$domain
	if [ ! -d "$le_dir" ]; then
		errs+=("LETSENCRYPT_DIRECTORY $le_dir does not exist: get the certificate of $domain first (see 'Custom domain' in docs/deploy.md), or remove MANAGE_CUSTOM_DOMAIN_CERT= so that the pod gets it itself")
		return
	fi
	if [ ! -e "$live/fullchain.pem" ] || [ ! -e "$live/privkey.pem" ]; then
		warn "$live has no fullchain.pem and privkey.pem yet: browsers get no certificate for $domain until they are there"
		return
	fi
	pod_can -r "$live/fullchain.pem" && pod_can -r "$live/privkey.pem" || rc=$?
	case $rc in
	1) errs+=("the pod's user ($pod_uid:$pod_gid) cannot read $live/privkey.pem (certbot keeps its keys for root). Let certbot copy them for the pod after each renewal, with the deploy hook in 'Custom domain' in docs/deploy.md, and set LETSENCRYPT_DIRECTORY to where it copies them") ;;
	2) note "cannot tell whether the pod's user ($pod_uid:$pod_gid) may read $live; run as root to check" ;;
	esac
}

# wipe_targets lists what the wipe options remove, in the layout of the
# pod's ROOT_DIR: existing paths only, sorted.
wipe=()
wipe_targets() {
	local net p dir
	if [ $((wipe_all + wipe_memberships + wipe_member_data + wipe_logs)) -gt 0 ]; then
		for dir in "$root_dir" "$log_dir"; do
			if [ -d "$dir" ] && ! { [ -r "$dir" ] && [ -x "$dir" ]; }; then
				errs+=("$(id -un) cannot look into $dir to wipe it: run the script as root")
			fi
		done
	fi
	net=$(get NETWORK)
	net=${net:-byoda.net}
	if [ $wipe_all = 1 ]; then
		while IFS= read -r -d '' p; do
			wipe+=("$p")
		done < <(find "$root_dir" -mindepth 1 -maxdepth 1 -print0 2>/dev/null | sort -z)
		[ $shared = 1 ] && wipe+=("$conf_dir"/account.conf)
	fi
	if [ $wipe_all = 0 ] && [ $wipe_memberships = 1 ]; then
		wipe+=("$root_dir"/private/network-"$net"-account-pod-member-*.key
			"$root_dir"/network-"$net"/account-pod/service-*
			"$root_dir"/private/network-"$net"/account-pod/data/*
			"$root_dir"/network-"$net"/services/*)
	fi
	if [ $wipe_all = 0 ] && [ $wipe_memberships = 0 ] && [ $wipe_member_data = 1 ]; then
		wipe+=("$root_dir"/private/network-"$net"/account-pod/data/*)
	fi
	if [ $shared = 1 ] && [ $((wipe_all + wipe_memberships)) -gt 0 ]; then
		for p in "$conf_dir"/member-*.conf; do
			[[ ${p##*/} =~ ^member-[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}\.conf$ ]] && wipe+=("$p")
		done
	fi
	if [ $wipe_logs = 1 ] || { [ $wipe_all = 1 ] && [ $keep_logs = 0 ]; }; then
		for p in "$log_dir"/*.log "$log_dir"/*.log.[0-9]*; do
			[ -f "$p" ] && wipe+=("$p")
		done
	fi

	local kept=()
	for p in "${wipe[@]}"; do
		[ -e "$p" ] || [ -L "$p" ] && kept+=("$p")
	done
	wipe=("${kept[@]}")
	for p in "${wipe[@]}"; do
		add_plan rm -rf -- "$p"
	done
}

check_wipe_flags() {
	if [ $wipe_all = 1 ] && [ $((wipe_memberships + wipe_member_data)) -gt 0 ]; then
		note "--wipe-all removes everything; --wipe-memberships and --wipe-member-data add nothing"
	elif [ $wipe_memberships = 1 ] && [ $wipe_member_data = 1 ]; then
		note "--wipe-memberships removes the member data too"
	fi
	if [ $keep_logs = 1 ] && [ $wipe_logs = 1 ]; then
		die "--keep-logs and --wipe-logs contradict each other" 2
	fi
	if [ $keep_logs = 1 ] && [ $wipe_all = 0 ]; then
		note "logs are kept unless --wipe-logs or --wipe-all; --keep-logs changes nothing here"
	fi
	if [ $wipe_all = 1 ] && [ -n "$(get ACCOUNT_ID)" ]; then
		note "ACCOUNT_ID is set, so after --wipe-all the pod starts afresh as that same account"
	fi
	return 0
}

# confirm asks before a wipe that --yes did not approve.
confirm() {
	[ ${#wipe[@]} -eq 0 ] || [ $assume_yes = 1 ] && return 0
	printf '%s: the wipe removes, for good:\n' "$prog" >&2
	printf '  %s\n' "${wipe[@]}" >&2
	if [ ! -t 0 ]; then
		die "not wiping without --yes when not run from a terminal"
	fi
	printf "Data that is not in a backup (byoda pod backup) is lost. Type 'yes' to go on: " >&2
	local answer
	read -r answer || true
	[ "$answer" = yes ] || die "not wiping; nothing was changed"
}

summary() {
	local mode="443/444 served by the pod"
	[ $shared = 1 ] && mode="behind the host's web server (SHARED_WEBSERVER), HTTP on 127.0.0.1:$http_port"
	note "settings: $config"
	note "pod: $mode; data in $root_dir, logs in $log_dir"
	if [ $manage = 1 ]; then
		note "custom domain $(get CUSTOM_DOMAIN): the pod gets its certificate by ACME on port $acme_port, which the Internet must reach"
	elif [ $external = 1 ]; then
		note "custom domain $(get CUSTOM_DOMAIN): certificate read from $le_dir, renewed by someone else"
	fi
	if [ $shared = 1 ] && [ "$(get TRUSTED_PROXIES)" = $docker_gateway ]; then
		note "TRUSTED_PROXIES=$docker_gateway: the host's web server reaches the pod through docker's bridge gateway"
	fi
}

# use_docker_gateway asks docker for its bridge's gateway when the script
# chose TRUSTED_PROXIES, as a daemon may be set up with another network.
use_docker_gateway() {
	[ $shared = 1 ] && [ "$(get TRUSTED_PROXIES)" = $docker_gateway ] || return 0
	local gw
	gw=$(docker network inspect bridge --format '{{range .IPAM.Config}}{{.Gateway}} {{end}}' \
		2>/dev/null) || return 0
	gw=${gw%% *}
	if [ -n "$gw" ] && [ "$gw" != $docker_gateway ]; then
		note "docker's bridge gateway is $gw: TRUSTED_PROXIES=$gw"
		cfg[TRUSTED_PROXIES]=$gw
	fi
}

main() {
	parse_args "$@"
	read_config
	derive
	check_wipe_flags
	wipe_targets
	plan_dirs
	if [ ${#errs[@]} -gt 0 ]; then
		printf '%s: cannot start the pod:\n' "$prog" >&2
		printf '  - %s\n' "${errs[@]}" >&2
		exit 1
	fi
	summary

	if [ $dry_run = 1 ]; then
		build_run
		note "dry run: nothing is changed. The commands, with the container's settings passed as --env NAME from this script's environment:"
		shell_words docker stop --time 30 "$name"
		shell_words docker rm "$name"
		[ ${#plan[@]} -eq 0 ] || printf '%s\n' "${plan[@]}"
		shell_words "${run_args[@]}"
		return 0
	fi

	command -v docker >/dev/null ||
		die "docker is not installed; install it, or run the pod without Docker (see docs/deploy.md)"
	confirm
	use_docker_gateway
	build_run

	if docker container inspect "$name" >/dev/null 2>&1; then
		note "stopping and removing the container $name"
		docker stop --time 30 "$name" >/dev/null
		docker rm "$name" >/dev/null
	fi
	# The plan's commands were quoted by shell_words, so eval runs exactly
	# what the dry run prints.
	local p
	for p in "${plan[@]}"; do
		note "$p"
		eval "$p"
	done

	local f
	for f in "${path_settings[@]}" "${pod_settings[@]}"; do
		if is_set "$f"; then
			export "$f=${cfg[$f]}"
		fi
	done
	export BIND_ADDRESS=0.0.0.0
	note "starting $image:$tag as the container $name"
	"${run_args[@]}" >/dev/null
	note "started; follow its log with: docker logs -f $name"
}

main "$@"
