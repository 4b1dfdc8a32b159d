//! `cadence passwd` and `cadence sign-url`.

use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

use clap::Args;

use super::passwd::{self, PasswdOutcome, DEFAULT_REALM};
use super::secret::Secret;
use super::signed_url::sign_url;
use super::subnet::parse_cidr;

/// `cadence passwd FILE USER`.
#[derive(Debug, Clone, Args)]
pub struct PasswdArgs {
    /// The qtusers file (DSS format); created when missing.
    pub file: PathBuf,
    /// The user to add or change.
    pub user: String,
    /// Realm of a new file [default: asked on a terminal, else "Streaming Server"];
    /// must equal the realm of an existing file.
    #[arg(long)]
    pub realm: Option<String>,
}

/// `cadence sign-url --secret-file F --expires-in S [--client-subnet CIDR] URL`.
#[derive(Debug, Clone, Args)]
pub struct SignUrlArgs {
    /// The signed-URL key file (the server's `url_secret_file`).
    #[arg(long)]
    pub secret_file: PathBuf,
    /// Seconds from now until the URL expires.
    #[arg(long)]
    pub expires_in: u64,
    /// Bind the URL to clients in this subnet (CIDR or address).
    #[arg(long)]
    pub client_subnet: Option<String>,
    /// The rtsp:// URL of the file, without a query.
    pub url: String,
}

/// Where `passwd` reads the password and realm.
pub enum PasswordInput<'a> {
    /// A terminal: the password is read twice without echo (from the
    /// controlling terminal), the realm of a new file is asked.
    Terminal,
    /// Not a terminal: the password is the first line (`\n` or `\r\n`
    /// removed), as `htpasswd -i`; the realm of a new file is `--realm` or
    /// [`DEFAULT_REALM`].
    Lines(&'a mut dyn BufRead),
}

/// Runs `passwd`: returns the message to print, or the error.
pub fn run_passwd(args: &PasswdArgs, input: PasswordInput<'_>) -> Result<String, String> {
    passwd::check_user(&args.user).map_err(|e| e.to_string())?;
    let exists = args.file.exists();
    let (password, realm) = match input {
        PasswordInput::Terminal => {
            let realm = match (&args.realm, exists) {
                (Some(r), _) => Some(r.clone()),
                (None, true) => None,
                (None, false) => {
                    eprint!("Realm of the new file [{DEFAULT_REALM}]: ");
                    let mut line = String::new();
                    std::io::stdin()
                        .lock()
                        .read_line(&mut line)
                        .map_err(|e| format!("cannot read the realm: {e}"))?;
                    let line = line.trim();
                    (!line.is_empty()).then(|| line.to_string())
                }
            };
            let prompt = format!("New password for {}: ", args.user);
            let p1 = rpassword::prompt_password(prompt)
                .map_err(|e| format!("cannot read the password: {e}"))?;
            let p2 = rpassword::prompt_password("Again: ")
                .map_err(|e| format!("cannot read the password: {e}"))?;
            if p1 != p2 {
                return Err("the passwords differ".into());
            }
            (p1, realm)
        }
        PasswordInput::Lines(r) => {
            let mut line = String::new();
            r.read_line(&mut line)
                .map_err(|e| format!("cannot read the password from stdin: {e}"))?;
            let p = line
                .strip_suffix('\n')
                .map(|l| l.strip_suffix('\r').unwrap_or(l))
                .unwrap_or(&line)
                .to_string();
            (p, args.realm.clone())
        }
    };
    let outcome = passwd::set_password(&args.file, &args.user, &password, realm.as_deref())
        .map_err(|e| e.to_string())?;
    let what = match outcome {
        PasswdOutcome::Added => "added",
        PasswdOutcome::Changed => "changed",
    };
    Ok(format!(
        "{}: user {:?} {what}",
        args.file.display(),
        args.user
    ))
}

/// `cadence passwd`: stdin is a terminal or not ([`PasswordInput`]).
pub fn passwd_main(args: &PasswdArgs) -> ExitCode {
    let stdin = std::io::stdin();
    let result = if stdin.is_terminal() {
        run_passwd(args, PasswordInput::Terminal)
    } else {
        run_passwd(args, PasswordInput::Lines(&mut stdin.lock()))
    };
    match result {
        Ok(msg) => {
            eprintln!("{msg}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("cadence passwd: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Runs `sign-url` at `now_unix_s`: the signed URL, or the error.
pub fn run_sign_url(args: &SignUrlArgs, now_unix_s: u64) -> Result<String, String> {
    let key = Secret::read_file(&args.secret_file).map_err(|e| e.to_string())?;
    let expires_at = now_unix_s
        .checked_add(args.expires_in)
        .ok_or("--expires-in is too large")?;
    let subnet = args
        .client_subnet
        .as_deref()
        .map(parse_cidr)
        .transpose()
        .map_err(|e| format!("--client-subnet: {e}"))?;
    sign_url(&key, &args.url, expires_at, subnet).map_err(|e| e.to_string())
}

/// `cadence sign-url`: prints the signed URL on stdout.
pub fn sign_url_main(args: &SignUrlArgs) -> ExitCode {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    match run_sign_url(args, now) {
        Ok(url) => {
            let mut out = std::io::stdout().lock();
            if writeln!(out, "{url}").is_err() {
                return ExitCode::FAILURE;
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("cadence sign-url: {e}");
            ExitCode::FAILURE
        }
    }
}
