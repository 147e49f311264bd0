{{/* Chart name, truncated to the 63 characters Kubernetes allows in names and labels. */}}
{{- define "sidecar.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Fully qualified app name; the release name alone when it already contains the chart name. */}}
{{- define "sidecar.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "sidecar.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "sidecar.selectorLabels" -}}
app.kubernetes.io/name: {{ include "sidecar.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: auth-proxy
{{- end }}

{{- define "sidecar.labels" -}}
helm.sh/chart: {{ include "sidecar.chart" . }}
{{ include "sidecar.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "sidecar.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "sidecar.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "sidecar.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/* Secret holding the 3LO credentials and session keys. */}}
{{- define "sidecar.authSecretName" -}}
{{- default (include "sidecar.fullname" .) .Values.auth.existingSecret }}
{{- end }}

{{/* Bundled (evaluation-only) Redis: names and labels. */}}
{{- define "sidecar.redisFullname" -}}
{{- printf "%s-redis" (include "sidecar.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "sidecar.redisSelectorLabels" -}}
app.kubernetes.io/name: {{ include "sidecar.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: redis-evaluation-only
{{- end }}

{{- define "sidecar.redisLabels" -}}
helm.sh/chart: {{ include "sidecar.chart" . }}
{{ include "sidecar.redisSelectorLabels" . }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/*
The Redis URL the chart itself stores in its Secret, or "" when it comes from
redis.existingSecret (or when no Redis is configured, which "sidecar.validate" refuses).
*/}}
{{- define "sidecar.redisUrl" -}}
{{- $r := .Values.redis }}
{{- if $r.url }}
{{- $r.url }}
{{- else if $r.sentinel.enabled }}
{{- $auth := "" }}
{{- if $r.sentinel.password }}
{{- $auth = printf ":%s@" ($r.sentinel.password | urlquery) }}
{{- end }}
{{- printf "redis+sentinel://%s%s/%s" $auth (join "," $r.sentinel.hosts) $r.sentinel.masterName }}
{{- else if $r.bundled.enabled }}
{{- printf "redis://%s:6379/0" (include "sidecar.redisFullname" .) }}
{{- end }}
{{- end }}

{{/* Whether the chart renders its own Secret (credentials and/or a Redis URL). */}}
{{- define "sidecar.createSecret" -}}
{{- if or (not .Values.auth.existingSecret) (include "sidecar.redisUrl" .) }}true{{ end }}
{{- end }}

{{/* Refuse values that would deploy a broken sidecar; every problem in one message. */}}
{{- define "sidecar.validate" -}}
{{- $problems := list }}
{{- $a := .Values.auth }}
{{- if $a.existingSecret }}
{{- if or $a.clientId $a.clientSecret $a.secretKeys }}
{{- $problems = append $problems "auth: set either auth.existingSecret or auth.clientId/clientSecret/secretKeys, not both" }}
{{- end }}
{{- else }}
{{- range $k := list "clientId" "clientSecret" "secretKeys" }}
{{- if not (index $a $k) }}
{{- $problems = append $problems (printf "auth.%s is required (or set auth.existingSecret)" $k) }}
{{- end }}
{{- end }}
{{- end }}
{{- $r := .Values.redis }}
{{- $modes := list }}
{{- if $r.url }}{{ $modes = append $modes "redis.url" }}{{ end }}
{{- if $r.existingSecret }}{{ $modes = append $modes "redis.existingSecret" }}{{ end }}
{{- if $r.sentinel.enabled }}{{ $modes = append $modes "redis.sentinel" }}{{ end }}
{{- if $r.bundled.enabled }}{{ $modes = append $modes "redis.bundled" }}{{ end }}
{{- if eq (len $modes) 0 }}
{{- $problems = append $problems "redis: choose one of redis.url, redis.existingSecret, redis.sentinel.enabled or redis.bundled.enabled (sessions must be shared between replicas)" }}
{{- else if gt (len $modes) 1 }}
{{- $problems = append $problems (printf "redis: choose only one of %s" (join ", " $modes)) }}
{{- end }}
{{- if and $r.sentinel.enabled (not $r.sentinel.hosts) }}
{{- $problems = append $problems "redis.sentinel.hosts needs at least one host:port" }}
{{- end }}
{{- if and $r.cluster.enabled (not (or $r.url $r.existingSecret)) }}
{{- $problems = append $problems "redis.cluster needs a seed node URL in redis.url or redis.existingSecret" }}
{{- end }}
{{- $drain := add .Values.config.shutdownTimeout .Values.lifecycle.preStopSleepSeconds }}
{{- if le (int .Values.terminationGracePeriodSeconds) (int $drain) }}
{{- $problems = append $problems (printf "terminationGracePeriodSeconds (%d) must exceed config.shutdownTimeout + lifecycle.preStopSleepSeconds (%d)" (int .Values.terminationGracePeriodSeconds) (int $drain)) }}
{{- end }}
{{- if and .Values.autoscaling.enabled (gt (int .Values.autoscaling.minReplicas) (int .Values.autoscaling.maxReplicas)) }}
{{- $problems = append $problems "autoscaling.minReplicas must not exceed autoscaling.maxReplicas" }}
{{- end }}
{{- if $problems }}
{{- fail (printf "\n\ninvalid values for atlassian-sidecar:\n  - %s\n" (join "\n  - " $problems)) }}
{{- end }}
{{- end }}
