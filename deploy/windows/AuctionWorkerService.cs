// Minimal Windows service host for the auction Celery worker, used by
// install-worker.ps1 when NSSM is not installed. Celery is a console program
// and cannot answer the Service Control Manager itself; this wrapper does.
//
// Compiled by install-worker.ps1 with the csc.exe of .NET Framework 4.x, which
// every supported Windows has (C# 5, no extra packages):
//   csc /target:exe /reference:System.ServiceProcess.dll /out:AuctionWorkerService.exe AuctionWorkerService.cs
//
// It reads AuctionWorkerService.ini next to the .exe (NAME=value lines):
//   ServiceName       the service name it registers under
//   Executable        e.g. C:\auction-hall\.venv\Scripts\celery.exe
//   Arguments         e.g. -A workers worker -P eventlet -Q money,lots,notify -c 100 -n auction-worker@HOST
//   WorkingDirectory  the project checkout (C:\auction-hall\app)
//   EnvFile           NAME=value settings passed to the worker (auction.env)
//   LogFile           stdout and stderr of the worker are appended here
//   StopArguments     e.g. -A workers control shutdown --destination auction-worker@HOST
//   StopTimeoutSec    how long a stop waits for running tasks to finish
//
// Stop = Celery warm shutdown: the wrapper sends the worker Celery's own
// `control shutdown` command through the broker (Windows has no SIGTERM, and a
// service cannot send Ctrl+C to a console it does not share). The worker stops
// taking tasks, finishes the running ones and exits. Only if it is still
// running after StopTimeoutSec is the process tree killed.
// If the worker exits by itself, the wrapper exits with an error, so the
// service recovery actions (set by install-worker.ps1) restart it.
//
// Debug in a console: AuctionWorkerService.exe --console   (Enter stops it)

using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.IO;
using System.ServiceProcess;
using System.Text;
using System.Threading;

public class AuctionWorkerService : ServiceBase
{
    private readonly Dictionary<string, string> config;
    private readonly object logLock = new object();
    private StreamWriter log;
    private Process child;
    private volatile bool stopping;
    private bool consoleMode;

    public AuctionWorkerService(Dictionary<string, string> config)
    {
        this.config = config;
        ServiceName = Setting("ServiceName", "AuctionWorker");
        CanStop = true;
        CanShutdown = true;
        CanPauseAndContinue = false;
        AutoLog = true;
    }

    public static int Main(string[] args)
    {
        string exe = System.Reflection.Assembly.GetExecutingAssembly().Location;
        Dictionary<string, string> config = ReadKeyValues(Path.ChangeExtension(exe, ".ini"));
        AuctionWorkerService service = new AuctionWorkerService(config);
        if (args.Length > 0 && args[0] == "--console")
        {
            service.consoleMode = true;
            service.OnStart(args);
            Console.WriteLine("Worker started; press Enter to stop it.");
            Console.ReadLine();
            service.OnStop();
            return 0;
        }
        ServiceBase.Run(service);
        return 0;
    }

    // NAME=value lines; blank lines and lines starting with # or ; are skipped;
    // one pair of surrounding quotes is removed. The same format as auction.env.
    public static Dictionary<string, string> ReadKeyValues(string path)
    {
        Dictionary<string, string> result = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        foreach (string raw in File.ReadAllLines(path, Encoding.UTF8))
        {
            string line = raw.Trim();
            if (line.Length == 0 || line.StartsWith("#") || line.StartsWith(";"))
            {
                continue;
            }
            int eq = line.IndexOf('=');
            if (eq <= 0)
            {
                continue;
            }
            string key = line.Substring(0, eq).Trim();
            string value = line.Substring(eq + 1).Trim();
            if (value.Length >= 2 && (value[0] == '"' || value[0] == '\'') && value[value.Length - 1] == value[0])
            {
                value = value.Substring(1, value.Length - 2);
            }
            result[key] = value;
        }
        return result;
    }

    private string Setting(string key, string fallback)
    {
        string value;
        if (config.TryGetValue(key, out value) && value.Length > 0)
        {
            return value;
        }
        if (fallback == null)
        {
            throw new InvalidOperationException("AuctionWorkerService.ini has no " + key);
        }
        return fallback;
    }

    private void Log(string line)
    {
        if (line == null)
        {
            return;
        }
        lock (logLock)
        {
            if (log != null)
            {
                log.WriteLine(line);
            }
        }
    }

    private void Note(string message)
    {
        Log(DateTime.Now.ToString("yyyy-MM-dd HH:mm:ss") + " [service] " + message);
    }

    private ProcessStartInfo StartInfo(string arguments)
    {
        ProcessStartInfo info = new ProcessStartInfo(Setting("Executable", null), arguments);
        info.WorkingDirectory = Setting("WorkingDirectory", Environment.CurrentDirectory);
        info.UseShellExecute = false;
        info.CreateNoWindow = true;
        info.RedirectStandardOutput = true;
        info.RedirectStandardError = true;
        string envFile = Setting("EnvFile", "");
        if (envFile.Length > 0)
        {
            foreach (KeyValuePair<string, string> pair in ReadKeyValues(envFile))
            {
                info.EnvironmentVariables[pair.Key] = pair.Value;
            }
        }
        info.EnvironmentVariables["PYTHONUNBUFFERED"] = "1";
        return info;
    }

    private void OpenLog()
    {
        string path = Setting("LogFile", Path.Combine(Setting("WorkingDirectory", "."), "worker.log"));
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path)));
        // Keep one previous file once the log passes 20 MB.
        FileInfo info = new FileInfo(path);
        if (info.Exists && info.Length > 20L * 1024 * 1024)
        {
            string old = path + ".1";
            File.Delete(old);
            File.Move(path, old);
        }
        FileStream stream = new FileStream(path, FileMode.Append, FileAccess.Write, FileShare.ReadWrite);
        log = new StreamWriter(stream, new UTF8Encoding(false));
        log.AutoFlush = true;
    }

    protected override void OnStart(string[] args)
    {
        OpenLog();
        stopping = false;
        ProcessStartInfo info = StartInfo(Setting("Arguments", null));
        Note("starting " + info.FileName + " " + info.Arguments);
        child = new Process();
        child.StartInfo = info;
        child.EnableRaisingEvents = true;
        child.OutputDataReceived += delegate(object sender, DataReceivedEventArgs e) { Log(e.Data); };
        child.ErrorDataReceived += delegate(object sender, DataReceivedEventArgs e) { Log(e.Data); };
        child.Exited += OnChildExited;
        child.Start();
        child.BeginOutputReadLine();
        child.BeginErrorReadLine();
        Note("worker process id " + child.Id);
    }

    private void OnChildExited(object sender, EventArgs e)
    {
        if (stopping)
        {
            return;
        }
        int code = -1;
        try
        {
            code = child.ExitCode;
        }
        catch (InvalidOperationException)
        {
        }
        Note("worker exited unexpectedly with code " + code + "; exiting so the service manager restarts it");
        // Not a clean stop: the recovery actions (sc.exe failure) apply.
        Environment.Exit(1);
    }

    protected override void OnStop()
    {
        StopWorker();
    }

    protected override void OnShutdown()
    {
        StopWorker();
    }

    private void StopWorker()
    {
        stopping = true;
        if (child == null || child.HasExited)
        {
            return;
        }
        int timeoutSec = int.Parse(Setting("StopTimeoutSec", "120"));
        if (!consoleMode)
        {
            // Tell the service manager the stop takes a while.
            RequestAdditionalTime((timeoutSec + 30) * 1000);
        }
        string stopArguments = Setting("StopArguments", "");
        if (stopArguments.Length > 0)
        {
            // Celery then prints "No nodes replied within time constraint" and
            // exits with an error: expected, a worker does not answer shutdown.
            Note("asking the worker for a warm shutdown: " + stopArguments);
            try
            {
                Process stopper = Process.Start(StartInfo(stopArguments));
                stopper.OutputDataReceived += delegate(object sender, DataReceivedEventArgs e) { Log(e.Data); };
                stopper.ErrorDataReceived += delegate(object sender, DataReceivedEventArgs e) { Log(e.Data); };
                stopper.BeginOutputReadLine();
                stopper.BeginErrorReadLine();
                if (!stopper.WaitForExit(30000))
                {
                    stopper.Kill();
                }
            }
            catch (Exception ex)
            {
                Note("could not send the shutdown command: " + ex.Message);
            }
        }
        if (!child.WaitForExit(timeoutSec * 1000))
        {
            Note("worker still running after " + timeoutSec + " s; killing its process tree");
            KillTree(child.Id);
            child.WaitForExit(10000);
        }
        else
        {
            child.WaitForExit();
        }
        Note("worker stopped");
        lock (logLock)
        {
            if (log != null)
            {
                log.Dispose();
                log = null;
            }
        }
    }

    private static void KillTree(int pid)
    {
        ProcessStartInfo info = new ProcessStartInfo("taskkill.exe", "/PID " + pid + " /T /F");
        info.UseShellExecute = false;
        info.CreateNoWindow = true;
        using (Process killer = Process.Start(info))
        {
            killer.WaitForExit(30000);
        }
    }
}
