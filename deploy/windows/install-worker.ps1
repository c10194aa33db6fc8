<#
.SYNOPSIS
Installs an auction-hall Celery worker as a Windows service.

.DESCRIPTION
Copies the project to <InstallDir>\app, creates the virtualenv <InstallDir>\.venv,
pip-installs the project into it, writes the worker's settings to
<InstallDir>\auction.env (readable only by SYSTEM, Administrators and the service
account) and registers a service that runs

    celery -A workers worker -P eventlet -Q money,lots,notify -c 100 -n <name>@<COMPUTERNAME>

Two ways to host it, see README.md next to this script:
  * NSSM (nssm.exe on PATH or -Nssm): NSSM runs celery.exe, passes the settings
    as AppEnvironmentExtra, rotates the log and stops the worker with Ctrl+C,
    which Celery treats as a warm shutdown.
  * Otherwise (or with -NoNssm): New-Service with a small wrapper,
    AuctionWorkerService.exe, compiled here from AuctionWorkerService.cs with
    the csc.exe of .NET Framework 4.x. It stops the worker with Celery's own
    `control shutdown` command (a warm shutdown through the broker).

The eventlet pool is the one to use on Windows: Celery's default process pool
does not work there (README.md explains). The hall itself (Tornado) stays on
Linux.

Run it again to upgrade: the service is stopped, the code and the virtualenv are
updated, the service is registered again and started.

.PARAMETER SourceDir
The project checkout to install. Default: the repository this script is in.

.PARAMETER InstallDir
Where app\, .venv\, logs\, var\ and auction.env go. Default C:\auction-hall.

.PARAMETER EnvFile
A NAME=value file with the settings (the format of
deploy/systemd/auction.env.example). -RedisUrl, -DatabaseUrl, -HallSecret and
-Setting override values from it.

.PARAMETER Setting
Any other settings, e.g. @{ HALL_SWEEP_INTERVAL_S = '1.0' }.

.PARAMETER ServiceAccount
Default: the virtual account NT SERVICE\<ServiceName> (no password, no rights
beyond what this script grants). 'LocalSystem' is accepted but not advised.

.EXAMPLE
.\install-worker.ps1 -EnvFile D:\secrets\auction.env

.EXAMPLE
.\install-worker.ps1 -RedisUrl 'redis://:PASSWORD@10.0.0.11:6379/0' `
    -DatabaseUrl 'postgresql://auction:PASSWORD@10.0.0.12:5432/auction' `
    -HallSecret (Get-Content D:\secrets\hall_secret.txt) -Queues 'money,lots'

.EXAMPLE
.\install-worker.ps1 -Uninstall
#>
#Requires -Version 5.1
#Requires -RunAsAdministrator
[CmdletBinding()]
param(
    [string]$SourceDir,
    [string]$InstallDir = 'C:\auction-hall',
    [ValidatePattern('^[A-Za-z][A-Za-z0-9_-]{0,79}$')]
    [string]$ServiceName = 'AuctionWorker',
    [ValidatePattern('^(money|lots|notify)(,(money|lots|notify))*$')]
    [string]$Queues = 'money,lots,notify',
    # Greenlets. Python's select() on Windows handles at most 512 sockets per
    # process; every running task may hold a Redis and a database connection.
    [ValidateRange(1, 200)]
    [int]$Concurrency = 100,
    [string]$EnvFile,
    [string]$RedisUrl,
    [string]$DatabaseUrl,
    [string]$HallSecret,
    [hashtable]$Setting = @{},
    # python.exe 3.11-3.13, installed for all users. Default: py launcher, then PATH.
    [string]$Python,
    [string]$Nssm,
    [switch]$NoNssm,
    [string]$ServiceAccount,
    # How long a stop waits for running tasks (warm shutdown) before killing.
    [ValidateRange(10, 3600)]
    [int]$StopTimeoutSec = 120,
    # Only for a single Windows machine running everything; a SQLite file
    # cannot be shared with workers or halls on other machines.
    [switch]$AllowSqlite,
    [switch]$Uninstall
)

Set-StrictMode -Version Latest
$ErrorActionPreference = 'Stop'

# Every name settings.py reads (tests/test_deploy.py keeps this list in step).
$KnownSettings = @(
    'HALL_ENV', 'HALL_HOST', 'HALL_PORT', 'HALL_DATA_DIR',
    'HALL_LOG_LEVEL', 'HALL_UVLOOP', 'HALL_GC_FREEZE', 'HALL_GC_THRESHOLD', 'HALL_REDIS_PORT',
    'REDIS_URL', 'DATABASE_URL', 'CELERY_BROKER_URL', 'CELERY_RESULT_BACKEND',
    'REDIS_SENTINELS', 'REDIS_SENTINEL_MASTER', 'REDIS_SENTINEL_PASSWORD',
    'HALL_SECRET', 'HALL_TOKEN_TTL_S', 'HALL_ALLOWED_ORIGINS',
    'HALL_WS_MAX_FRAME', 'HALL_WS_MAX_BUFFER', 'HALL_WS_PING_INTERVAL_S',
    'HALL_BID_RATE_PER_S', 'HALL_LOGIN_RATE_PER_MIN',
    'HALL_LOGIN_ADDR_RATE_PER_MIN', 'HALL_LOGIN_FAILURES_PER_ACCOUNT',
    'HALL_LOGIN_FAILURE_WINDOW_S', 'HALL_TRUSTED_PROXIES', 'HALL_BODY_TIMEOUT_S',
    'HALL_MAX_SLOW_BODIES_PER_ADDR', 'HALL_SLOW_BODY_GRACE_S', 'HALL_ROLE_CACHE_S',
    'HALL_IMAGE_HOSTS',
    'HALL_EXTEND_WINDOW_S', 'HALL_EXTEND_BY_S', 'HALL_FAIR_WARNING_S', 'HALL_ORDER_PAY_WINDOW_S',
    'HALL_STREAM_MAXLEN', 'HALL_SWEEP_INTERVAL_S', 'HALL_SETTLE_GRACE_S',
    'HALL_VISIBILITY_TIMEOUT_S', 'HALL_LEASE_RENEW_S', 'HALL_OUTBOX_LOOK_S', 'HALL_RETRY_ALERT_AFTER', 'HALL_DB_BUSY_TIMEOUT_MS', 'HALL_PAYMENT_CHECK_AFTER_S', 'HALL_TOPUP_MAX_FEN', 'HALL_TOPUP_EXPIRE_S', 'HALL_STRIKES_TO_BAN', 'HALL_OFFER_WINDOW_S', 'HALL_SIGNING_KEY', 'HALL_SIGNING_KEYS_RETIRED',
    'WECHAT_API_BASE', 'WECHAT_APPID', 'WECHAT_MCHID', 'WECHAT_SERIAL_NO',
    'WECHAT_PRIVATE_KEY_PATH', 'WECHAT_PLATFORM_PUBLIC_KEY_PATH',
    'WECHAT_PLATFORM_SERIAL', 'WECHAT_APIV3_KEY', 'WECHAT_NOTIFY_URL',
    'WECHAT_MINI_APPID', 'WECHAT_MINI_SECRET', 'WECHAT_OA_APPID', 'WECHAT_OA_SECRET',
    'WECHAT_LOGIN_API_BASE', 'WECHAT_OAUTH_BASE',
    'HALL_CLOSING_SOON_S', 'HALL_NOTIFY_OUTBID_SMS_EVERY_S', 'HALL_NOTIFY_SMS_RETRY_BACKOFF_S',
    'SMS_PROVIDER', 'SMS_API_BASE', 'SMS_ACCESS_KEY_ID', 'SMS_ACCESS_KEY_SECRET',
    'SMS_SIGN_NAME', 'SMS_TEMPLATES'
)

# Well-known SIDs: account names are translated on non-English Windows.
$SidSystem = 'S-1-5-18'
$SidAdministrators = 'S-1-5-32-544'

$AppDir = Join-Path $InstallDir 'app'
$VenvDir = Join-Path $InstallDir '.venv'
$LogDir = Join-Path $InstallDir 'logs'
$DataDir = Join-Path $InstallDir 'var'
$ServiceDir = Join-Path $InstallDir 'service'
$EnvPath = Join-Path $InstallDir 'auction.env'
$LogFile = Join-Path $LogDir 'worker.log'
$VenvPython = Join-Path $VenvDir 'Scripts\python.exe'
$CeleryExe = Join-Path $VenvDir 'Scripts\celery.exe'
$NodeName = '{0}@{1}' -f $ServiceName.ToLowerInvariant(), $env:COMPUTERNAME
$WorkerArgs = "-A workers worker -P eventlet -Q $Queues -c $Concurrency -n $NodeName --loglevel=INFO"
$StopArgs = "-A workers control shutdown --destination $NodeName"
if (-not $ServiceAccount) { $ServiceAccount = "NT SERVICE\$ServiceName" }
$IsLocalSystem = $ServiceAccount -in @('LocalSystem', 'NT AUTHORITY\SYSTEM', '.\LocalSystem')

function Write-Step([string]$Message) {
    Write-Host "==> $Message" -ForegroundColor Cyan
}

# Runs a program and throws if it fails. Native stderr must not become a
# terminating error under $ErrorActionPreference = 'Stop' (Windows PowerShell 5.1).
function Invoke-Checked {
    param(
        [Parameter(Mandatory = $true)][string]$FilePath,
        [string[]]$ArgumentList = @(),
        [int[]]$OkExitCodes = @(0)
    )
    $saved = $ErrorActionPreference
    $ErrorActionPreference = 'Continue'
    try {
        & $FilePath @ArgumentList 2>&1 | ForEach-Object { Write-Host "    $_" }
        $code = $LASTEXITCODE
    } finally {
        $ErrorActionPreference = $saved
    }
    if ($OkExitCodes -notcontains $code) {
        # Only the first arguments: later ones may be secrets (settings, passwords).
        $shown = @($ArgumentList | Select-Object -First 2) -join ' '
        throw "'$FilePath $shown ...' failed with exit code $code"
    }
}

# Runs a program and returns its output, or $null when it fails.
function Invoke-Quiet {
    param([string]$FilePath, [string[]]$ArgumentList = @())
    $saved = $ErrorActionPreference
    $ErrorActionPreference = 'Continue'
    try {
        $out = & $FilePath @ArgumentList 2>$null
        if ($LASTEXITCODE -ne 0) { return $null }
        return ($out | Out-String).Trim()
    } catch {
        return $null
    } finally {
        $ErrorActionPreference = $saved
    }
}

function Find-Python {
    $check = 'import sys; sys.exit(0 if (3, 11) <= sys.version_info[:2] < (3, 14) else 1)'
    $candidates = New-Object System.Collections.Generic.List[string]
    if ($Python) {
        $candidates.Add($Python)
    } else {
        $py = Get-Command 'py.exe' -ErrorAction SilentlyContinue
        if ($py) {
            foreach ($version in '3.11', '3.12', '3.13') {
                $exe = Invoke-Quiet $py.Source @("-$version", '-c', 'import sys; print(sys.executable)')
                if ($exe) { $candidates.Add($exe) }
            }
        }
        $onPath = Get-Command 'python.exe' -ErrorAction SilentlyContinue
        # Skip the Microsoft Store alias (WindowsApps): a service cannot use it.
        if ($onPath -and $onPath.Source -notlike '*\WindowsApps\*') { $candidates.Add($onPath.Source) }
    }
    foreach ($candidate in $candidates) {
        if ((Test-Path $candidate) -and ($null -ne (Invoke-Quiet $candidate @('-c', $check)))) {
            if ($candidate -like "$env:SystemDrive\Users\*") {
                Write-Warning "$candidate is a per-user Python; the service account may not be able to read it. Install Python 3.11+ 'for all users' (C:\Program Files\Python311)."
            }
            return $candidate
        }
    }
    throw 'No Python 3.11-3.13 found. Install it for all users from python.org, or pass -Python C:\Path\python.exe.'
}

function Find-Nssm {
    if ($NoNssm) { return $null }
    if ($Nssm) {
        if (-not (Test-Path $Nssm)) { throw "NSSM not found at $Nssm" }
        return (Resolve-Path $Nssm).Path
    }
    $cmd = Get-Command 'nssm.exe' -ErrorAction SilentlyContinue
    if ($cmd) { return $cmd.Source }
    foreach ($path in @("$env:ProgramFiles\nssm\nssm.exe", "$env:ProgramFiles\nssm\win64\nssm.exe", 'C:\nssm\win64\nssm.exe')) {
        if (Test-Path $path) { return $path }
    }
    return $null
}

function Remove-ExistingService {
    $existing = Get-Service -Name $ServiceName -ErrorAction SilentlyContinue
    if (-not $existing) { return }
    Write-Step "Stopping and removing the existing service $ServiceName"
    if ($existing.Status -ne 'Stopped') {
        # The worker finishes its running tasks first (warm shutdown).
        Stop-Service -Name $ServiceName -Force -ErrorAction SilentlyContinue
        $existing.WaitForStatus('Stopped', [TimeSpan]::FromSeconds($StopTimeoutSec + 60))
    }
    Invoke-Checked 'sc.exe' @('delete', $ServiceName)
    $deadline = (Get-Date).AddSeconds(60)
    while (Get-Service -Name $ServiceName -ErrorAction SilentlyContinue) {
        if ((Get-Date) -gt $deadline) {
            throw "Service $ServiceName is still marked for deletion; close services.msc and the Event Viewer, then run this again."
        }
        Start-Sleep -Seconds 1
    }
}

function Read-EnvFile([string]$Path) {
    $values = [ordered]@{}
    foreach ($raw in [System.IO.File]::ReadAllLines((Resolve-Path $Path).Path)) {
        $line = $raw.Trim()
        if ($line.Length -eq 0 -or $line.StartsWith('#') -or $line.StartsWith(';')) { continue }
        $eq = $line.IndexOf('=')
        if ($eq -le 0) { continue }
        $name = $line.Substring(0, $eq).Trim()
        $value = $line.Substring($eq + 1).Trim()
        if ($value.Length -ge 2 -and ($value[0] -eq '"' -or $value[0] -eq "'") -and $value[-1] -eq $value[0]) {
            $value = $value.Substring(1, $value.Length - 2)
        }
        $values[$name] = $value
    }
    return $values
}

function Get-WorkerSettings {
    $values = [ordered]@{}
    if ($EnvFile) {
        $fromFile = Read-EnvFile $EnvFile
        foreach ($name in $fromFile.Keys) { $values[$name] = $fromFile[$name] }
    }
    if ($RedisUrl) { $values['REDIS_URL'] = $RedisUrl }
    if ($DatabaseUrl) { $values['DATABASE_URL'] = $DatabaseUrl }
    if ($HallSecret) { $values['HALL_SECRET'] = $HallSecret }
    foreach ($name in $Setting.Keys) { $values[[string]$name] = [string]$Setting[$name] }
    if (-not $values['HALL_ENV']) { $values['HALL_ENV'] = 'production' }

    # Paths from a Linux env file mean nothing here.
    $dataDir = [string]$values['HALL_DATA_DIR']
    if (-not $dataDir -or $dataDir.StartsWith('/')) { $values['HALL_DATA_DIR'] = $DataDir }
    foreach ($name in @('WECHAT_PRIVATE_KEY_PATH', 'WECHAT_PLATFORM_PUBLIC_KEY_PATH')) {
        if ([string]$values[$name] -like '/*') {
            Write-Warning "$name is a Linux path ($($values[$name])); copy the key file to this machine and set a Windows path."
        }
    }

    # Empty values are dropped: settings.py then uses its default (an empty
    # number would not parse).
    $clean = [ordered]@{}
    foreach ($name in $values.Keys) {
        $value = [string]$values[$name]
        if ($value.Length -eq 0) { continue }
        if ($KnownSettings -notcontains $name) {
            Write-Warning "$name is not a setting of the auction hall (settings.py); passing it on anyway."
        }
        if ($value.Contains('"') -or $value.Contains("`n")) {
            throw "The value of $name must not contain double quotes or line breaks."
        }
        $clean[$name] = $value
    }

    if (-not $clean['REDIS_URL']) {
        throw 'REDIS_URL is required: a Windows worker joins the Redis of the deployment (the embedded Redis exists only inside `run.py all` on one machine).'
    }
    if (-not $clean['DATABASE_URL']) {
        throw 'DATABASE_URL is required (postgresql://user:password@host:5432/auction).'
    }
    if ($clean['DATABASE_URL'] -like 'sqlite*' -and -not $AllowSqlite) {
        throw 'DATABASE_URL is SQLite: a SQLite file cannot be shared with halls and workers on other machines. Use PostgreSQL, or pass -AllowSqlite for a single machine.'
    }
    if ($clean['HALL_ENV'] -eq 'production') {
        $secret = [string]$clean['HALL_SECRET']
        if ($secret.Length -lt 32 -or $secret -eq 'dev-only-secret-change-me') {
            throw 'HALL_ENV=production needs HALL_SECRET: the same private value of 32+ characters as on the hall machines.'
        }
    }
    return $clean
}

function Write-EnvFile($Values) {
    $lines = New-Object System.Collections.Generic.List[string]
    $lines.Add('# Written by deploy/windows/install-worker.ps1; read by the worker service.')
    foreach ($name in $Values.Keys) { $lines.Add("$name=$($Values[$name])") }
    [System.IO.File]::WriteAllLines($EnvPath, $lines, (New-Object System.Text.UTF8Encoding($false)))
}

function Test-RedisReachable([string]$Url) {
    try {
        $uri = [Uri]$Url
    } catch {
        return
    }
    if ($uri.Scheme -notin @('redis', 'rediss')) { return }
    $port = if ($uri.Port -gt 0) { $uri.Port } else { 6379 }
    $client = New-Object System.Net.Sockets.TcpClient
    try {
        $connect = $client.BeginConnect($uri.Host, $port, $null, $null)
        if ($connect.AsyncWaitHandle.WaitOne(3000) -and $client.Connected) {
            Write-Host "    Redis at $($uri.Host):$port is reachable."
        } else {
            Write-Warning "Cannot reach Redis at $($uri.Host):$port. Check the firewall on the Redis machine (allow this host on port $port) and its bind address."
        }
    } catch {
        Write-Warning "Cannot reach Redis at $($uri.Host):$port ($($_.Exception.Message))."
    } finally {
        $client.Close()
    }
}

function Install-Code {
    Write-Step "Copying $SourceDir to $AppDir"
    New-Item -ItemType Directory -Force -Path $InstallDir, $AppDir, $LogDir, $DataDir, $ServiceDir | Out-Null
    $source = (Resolve-Path $SourceDir).Path.TrimEnd('\')
    if ($source -ne (Resolve-Path $AppDir).Path.TrimEnd('\')) {
        # robocopy: exit codes below 8 mean success.
        Invoke-Checked 'robocopy.exe' @($source, $AppDir, '/MIR', '/NFL', '/NDL', '/NJH', '/NJS', '/NP',
            '/XD', '.git', '.venv', 'var', '__pycache__', '.pytest_cache', 'test-artifacts', 'node_modules',
            '/XF', '*.pyc') -OkExitCodes @(0, 1, 2, 3, 4, 5, 6, 7)
    }

    $basePython = Find-Python
    if (-not (Test-Path $VenvPython)) {
        Write-Step "Creating the virtualenv $VenvDir with $basePython"
        Invoke-Checked $basePython @('-m', 'venv', $VenvDir)
    }
    Write-Step 'Installing the project and its dependencies (pip)'
    Invoke-Checked $VenvPython @('-m', 'pip', 'install', '--upgrade', 'pip')
    # Editable: the code stays in $AppDir (with hall\lua, hall\static), the
    # virtualenv only points at it. The postgres extra brings psycopg2 and
    # psycogreen (psycopg2 cooperating with eventlet).
    Invoke-Checked $VenvPython @('-m', 'pip', 'install', '--editable', "$AppDir[postgres]")

    Write-Step 'Checking that the worker code imports'
    Push-Location $AppDir
    try {
        # (No double quotes inside native arguments: Windows PowerShell 5.1 does not
        # escape them.)
        Invoke-Checked $VenvPython @('-c', 'import celery, eventlet, workers; print(celery.__version__, eventlet.__version__)')
    } finally {
        Pop-Location
    }
    if (-not (Test-Path $CeleryExe)) { throw "$CeleryExe is missing after pip install." }
}

function Register-WithNssm([string]$NssmExe, $Values) {
    Write-Step "Registering $ServiceName with NSSM ($NssmExe)"
    Invoke-Checked $NssmExe @('install', $ServiceName, $CeleryExe)
    $pairs = @($Values.Keys | ForEach-Object { "$_=$($Values[$_])" })
    $pairs += 'PYTHONUNBUFFERED=1'
    $set = @(
        @('AppParameters', $WorkerArgs),
        @('AppDirectory', $AppDir),
        @('DisplayName', "Auction hall worker ($Queues)"),
        @('Description', "Celery worker (-P eventlet) for the auction hall, queues $Queues. deploy/windows/README.md"),
        @('Start', 'SERVICE_DELAYED_AUTO_START'),
        @('AppStdout', $LogFile),
        @('AppStderr', $LogFile),
        @('AppRotateFiles', '1'),
        @('AppRotateOnline', '1'),
        @('AppRotateBytes', '20971520'),
        # Stop: Ctrl+C only (= Celery warm shutdown), then wait for running
        # tasks; skip the window and thread methods; terminate after the wait.
        @('AppStopMethodSkip', '6'),
        @('AppStopMethodConsole', [string]($StopTimeoutSec * 1000)),
        @('AppKillProcessTree', '1'),
        @('AppExit', 'Default', 'Restart'),
        @('AppRestartDelay', '5000'),
        @('AppThrottle', '10000')
    )
    foreach ($item in $set) {
        Invoke-Checked $NssmExe (@('set', $ServiceName) + $item)
    }
    Invoke-Checked $NssmExe (@('set', $ServiceName, 'AppEnvironmentExtra') + $pairs)
}

function Register-WithWrapper {
    Write-Step 'NSSM not found (or -NoNssm): registering with New-Service and the AuctionWorkerService wrapper'
    $csSource = Join-Path $PSScriptRoot 'AuctionWorkerService.cs'
    $wrapperExe = Join-Path $ServiceDir 'AuctionWorkerService.exe'
    $wrapperIni = Join-Path $ServiceDir 'AuctionWorkerService.ini'
    $csc = Join-Path $env:WINDIR 'Microsoft.NET\Framework64\v4.0.30319\csc.exe'
    if (-not (Test-Path $csc)) { $csc = Join-Path $env:WINDIR 'Microsoft.NET\Framework\v4.0.30319\csc.exe' }
    if (-not (Test-Path $csc)) { throw 'csc.exe of .NET Framework 4.x not found; install NSSM instead (see README.md).' }
    Invoke-Checked $csc @('/nologo', '/target:exe', '/optimize+', "/out:$wrapperExe",
        '/reference:System.ServiceProcess.dll', $csSource)

    $ini = @(
        '# Read by AuctionWorkerService.exe; written by install-worker.ps1.',
        "ServiceName=$ServiceName",
        "Executable=$CeleryExe",
        "Arguments=$WorkerArgs",
        "WorkingDirectory=$AppDir",
        "EnvFile=$EnvPath",
        "LogFile=$LogFile",
        "StopArguments=$StopArgs",
        "StopTimeoutSec=$StopTimeoutSec"
    )
    [System.IO.File]::WriteAllLines($wrapperIni, $ini, (New-Object System.Text.UTF8Encoding($false)))

    New-Service -Name $ServiceName -BinaryPathName ('"{0}"' -f $wrapperExe) `
        -DisplayName "Auction hall worker ($Queues)" `
        -Description "Celery worker (-P eventlet) for the auction hall, queues $Queues. deploy/windows/README.md" `
        -StartupType Automatic | Out-Null
    Invoke-Checked 'sc.exe' @('config', $ServiceName, 'start=', 'delayed-auto')
}

function Get-ServiceAccountSid {
    if ($IsLocalSystem) { return $SidSystem }
    $account = New-Object System.Security.Principal.NTAccount($ServiceAccount)
    return $account.Translate([System.Security.Principal.SecurityIdentifier]).Value
}

function Set-ServiceAccountAndAcls([bool]$UsedNssm) {
    if (-not $IsLocalSystem) {
        Write-Step "Running the service as $ServiceAccount"
        if ($ServiceAccount -like 'NT SERVICE\*') {
            Invoke-Checked 'sc.exe' @('config', $ServiceName, 'obj=', $ServiceAccount)
        } else {
            $credential = Get-Credential -UserName $ServiceAccount -Message "Password of $ServiceAccount"
            Invoke-Checked 'sc.exe' @('config', $ServiceName, 'obj=', $ServiceAccount, 'password=',
                $credential.GetNetworkCredential().Password)
        }
    }
    $sid = Get-ServiceAccountSid

    Write-Step "Restricting $InstallDir to SYSTEM, Administrators and the service account"
    # Code and virtualenv: read and execute only (nobody else may change what
    # the service runs); logs and var: writable by the service.
    $grants = @('/grant:r', "*${SidSystem}:(OI)(CI)F", "*${SidAdministrators}:(OI)(CI)F")
    if ($sid -ne $SidSystem) { $grants += "*${sid}:(OI)(CI)RX" }
    Invoke-Checked 'icacls.exe' (@($InstallDir, '/inheritance:r') + $grants + @('/Q'))
    if ($sid -ne $SidSystem) {
        foreach ($dir in @($LogDir, $DataDir)) {
            Invoke-Checked 'icacls.exe' @($dir, '/grant', "*${sid}:(OI)(CI)M", '/Q')
        }
    }

    if ($UsedNssm) {
        # NSSM keeps AppEnvironmentExtra (with HALL_SECRET and the database
        # password) in the registry, readable by all local users by default.
        $key = "HKLM:\SYSTEM\CurrentControlSet\Services\$ServiceName\Parameters"
        $acl = Get-Acl -Path $key
        $acl.SetAccessRuleProtection($true, $false)
        foreach ($rule in @($acl.Access)) { [void]$acl.RemoveAccessRuleSpecific($rule) }
        $full = [System.Security.AccessControl.RegistryRights]::FullControl
        $read = [System.Security.AccessControl.RegistryRights]::ReadKey
        $inherit = [System.Security.AccessControl.InheritanceFlags]::ContainerInherit
        $none = [System.Security.AccessControl.PropagationFlags]::None
        $allow = [System.Security.AccessControl.AccessControlType]::Allow
        foreach ($pair in @(@($SidSystem, $full), @($SidAdministrators, $full), @($sid, $read))) {
            $identity = New-Object System.Security.Principal.SecurityIdentifier($pair[0])
            $acl.AddAccessRule((New-Object System.Security.AccessControl.RegistryAccessRule($identity, $pair[1], $inherit, $none, $allow)))
        }
        Set-Acl -Path $key -AclObject $acl
    }

    # Restart after a crash: 5 s, 10 s, then every 60 s; count resets daily.
    Invoke-Checked 'sc.exe' @('failure', $ServiceName, 'reset=', '86400', 'actions=', 'restart/5000/restart/10000/restart/60000')
    Invoke-Checked 'sc.exe' @('failureflag', $ServiceName, '1')
}

# ---------------------------------------------------------------------------

if ($Uninstall) {
    Remove-ExistingService
    Write-Host "Service $ServiceName removed. $InstallDir was left in place; delete it by hand if no longer needed."
    return
}

if (-not $SourceDir) { $SourceDir = Join-Path $PSScriptRoot '..\..' }
if (-not (Test-Path (Join-Path $SourceDir 'pyproject.toml'))) {
    throw "$SourceDir is not the project checkout (no pyproject.toml); pass -SourceDir."
}

$settings = Get-WorkerSettings
Test-RedisReachable ([string]$settings['REDIS_URL'])
$nssmExe = Find-Nssm

Remove-ExistingService
Install-Code
Write-Step "Writing the settings to $EnvPath"
Write-EnvFile $settings

if ($nssmExe) {
    Register-WithNssm $nssmExe $settings
} else {
    Register-WithWrapper
}
Set-ServiceAccountAndAcls ([bool]$nssmExe)

Write-Step "Starting $ServiceName"
Start-Service -Name $ServiceName
Start-Sleep -Seconds 5
Get-Service -Name $ServiceName | Format-Table -AutoSize Name, Status, StartType
if (Test-Path $LogFile) { Get-Content -Path $LogFile -Tail 20 }
Write-Host @"

Installed. The worker runs:
  celery $WorkerArgs
Log:      $LogFile
Settings: $EnvPath
Check from any machine with the project:  celery -A workers inspect ping -d $NodeName
Stop (warm shutdown, running tasks finish):  Stop-Service $ServiceName
"@
