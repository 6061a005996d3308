{{/* Names and labels. */}}
{{- define "entrepot.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "entrepot.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "entrepot.selectorLabels" -}}
app.kubernetes.io/name: {{ include "entrepot.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "entrepot.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "entrepot.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/component: registry
{{- end -}}

{{- define "entrepot.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "entrepot.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* The Secret the chart creates for connection values given inline. */}}
{{- define "entrepot.secretName" -}}
{{- printf "%s-connections" (include "entrepot.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "entrepot.scaleOut" -}}
{{- if eq .Values.mode "scale-out" }}true{{ end -}}
{{- end -}}

{{/*
Fails rendering with a clear message when scale-out lacks a backend, so a
half-configured release never starts replicas that would each fall back to
embedded storage.
*/}}
{{- define "entrepot.validate" -}}
{{- if include "entrepot.scaleOut" . -}}
{{- if not .Values.secretKey.existingSecret -}}
{{- fail "scale-out mode: secretKey.existingSecret must name a Secret holding ENTREPOT_SECRET_KEY (the same key on every replica)" -}}
{{- end -}}
{{- if not (or .Values.database.existingSecret .Values.database.url) -}}
{{- fail "scale-out mode: set database.existingSecret (a Secret with the mysql:// URL) or database.url" -}}
{{- end -}}
{{- if not (or .Values.redis.existingSecret .Values.redis.url) -}}
{{- fail "scale-out mode: set redis.existingSecret (a Secret with the redis:// URL) or redis.url" -}}
{{- end -}}
{{- if not .Values.s3.endpoint -}}
{{- fail "scale-out mode: set s3.endpoint (and s3.existingSecret or s3.accessKey/s3.secretKey)" -}}
{{- end -}}
{{- if not (or .Values.s3.existingSecret (and .Values.s3.accessKey .Values.s3.secretKey)) -}}
{{- fail "scale-out mode: set s3.existingSecret, or both s3.accessKey and s3.secretKey" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* True when the chart must render its own Secret (some connection value given inline). */}}
{{- define "entrepot.ownSecret" -}}
{{- if include "entrepot.scaleOut" . -}}
{{- if or (and .Values.database.url (not .Values.database.existingSecret)) (and .Values.redis.url (not .Values.redis.existingSecret)) (and .Values.s3.accessKey (not .Values.s3.existingSecret)) }}true{{ end -}}
{{- end -}}
{{- end -}}

{{/* One env entry read from a Secret key. */}}
{{- define "entrepot.secretEnv" -}}
- name: {{ .name }}
  valueFrom:
    secretKeyRef:
      name: {{ .secret }}
      key: {{ .key }}
{{- end -}}
