{{/* Chart name, truncated for DNS labels. */}}
{{- define "slipway-builder.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Full name of the release's objects. Truncated to 52 characters so that
"-headless" and "-client-tls" still fit in 63.
*/}}
{{- define "slipway-builder.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 52 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 52 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 52 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "slipway-builder.selectorLabels" -}}
app.kubernetes.io/name: {{ include "slipway-builder.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "slipway-builder.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "slipway-builder.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/component: builder
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "slipway-builder.headlessName" -}}
{{- printf "%s-headless" (include "slipway-builder.fullname" .) }}
{{- end }}

{{/* The Secret with the server's tls.crt, tls.key and the client CA ca.crt. */}}
{{- define "slipway-builder.tlsSecretName" -}}
{{- if and .Values.tls.generate .Values.tls.existingSecret }}
{{- fail "tls.generate and tls.existingSecret exclude each other: set one" }}
{{- else if .Values.tls.generate }}
{{- printf "%s-tls" (include "slipway-builder.fullname" .) }}
{{- else if .Values.tls.existingSecret }}
{{- .Values.tls.existingSecret }}
{{- else }}
{{- fail "the builder's TCP listener is mutual TLS only: set tls.existingSecret or tls.generate=true" }}
{{- end }}
{{- end }}

{{- define "slipway-builder.clientSecretName" -}}
{{- printf "%s-client-tls" (include "slipway-builder.fullname" .) }}
{{- end }}

{{/* Paths inside the container; config.toml refers to them. */}}
{{- define "slipway-builder.configFile" -}}/etc/slipway/config.toml{{- end }}
{{- define "slipway-builder.hostsDir" -}}/etc/slipway/certs.d{{- end }}
{{- define "slipway-builder.tlsDir" -}}/etc/slipway/tls{{- end }}
{{- define "slipway-builder.root" -}}/var/lib/slipway{{- end }}
{{- define "slipway-builder.state" -}}/run/slipway{{- end }}

{{/* Registry hosts in a stable order; ConfigMap key hosts-N.toml is hosts[N]. */}}
{{- define "slipway-builder.registryHosts" -}}
{{- range $host := keys .Values.registry.hosts | sortAlpha }}
{{- if or (contains "/" $host) (eq $host "") (eq $host ".") (eq $host "..") }}
{{- fail (printf "registry.hosts: %q is not a registry host" $host) }}
{{- end }}
{{ $host }}
{{- end }}
{{- end }}

{{- define "slipway-builder.probe" -}}
{{- if eq .Values.probes.mode "tcp" }}
tcpSocket:
  port: buildkit
{{- else if eq .Values.probes.mode "buildctl" }}
exec:
  command:
    - buildctl
    - --addr
    - unix://{{ include "slipway-builder.state" . }}/buildkit.sock
    - debug
    - workers
{{- else }}
{{- fail (printf "probes.mode must be tcp or buildctl, got %q" .Values.probes.mode) }}
{{- end }}
{{- end }}
