// Package deploy holds what runs the pod on a server of one's own:
// docker-launch.sh and its settings file config.env.example, compose.yaml,
// and the systemd units byoda-pod.service and byoda-webserver-reload.path.
// docs/deploy.md is the guide to them.
//
// The package has no Go code. Its tests run docker-launch.sh, in dry-run
// mode and against a stand-in docker command, for every combination of the
// settings that the seed's guide to running a pod at home names, and check
// the units with systemd-analyze, the compose file against the launch
// script, and the Dockerfile's build.
package deploy
