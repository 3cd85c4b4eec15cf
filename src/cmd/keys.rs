//! `cairn keys create|list|revoke` and `cairn audit`: API keys and the audit log, as the
//! machine's local admin. When `cairn serve` holds the data dir, the command goes to it
//! (`/v1/admin/keys`, `/v1/admin/audit`) with the data dir's token, so keys can be made
//! while the server runs.

use crate::app::App;
use crate::handoff::{self, ServeInfo};
use crate::output::{Printer, Render};
use cairn_core::{ApiKey, Config, Role};
use cairn_service::wire::{
    AuditLines, AuditRequest, CreateKeyRequest, CreatedKey, KeyList, Revoked,
};
use serde::Serialize;
use std::io::{self, Write};
use std::process::ExitCode;

#[derive(clap::Subcommand, Debug)]
pub enum Command {
    /// Make a key for --tenant (default: the configured one) and --groups; prints the key
    /// once (only its hash is kept)
    Create {
        /// reader: search and ask; writer: also upload, re-index and delete; admin: also
        /// keys, the audit log and server-side re-index
        #[arg(long, value_enum)]
        role: RoleArg,
        /// What the key is for, shown in lists
        #[arg(long, default_value = "")]
        name: String,
        /// The key stops working after this many days
        #[arg(long, value_name = "DAYS")]
        expires_in_days: Option<u32>,
        #[arg(long)]
        json: bool,
    },
    /// List the keys of --tenant (or of every tenant with --all), without their secrets
    List {
        #[arg(long)]
        all: bool,
        #[arg(long)]
        json: bool,
    },
    /// Revoke a key by its id (the 16 hex digits after `cairn_`); it stops working at once
    Revoke {
        id: String,
        #[arg(long)]
        json: bool,
    },
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub enum RoleArg {
    Reader,
    Writer,
    Admin,
}

impl From<RoleArg> for Role {
    fn from(r: RoleArg) -> Role {
        match r {
            RoleArg::Reader => Role::Reader,
            RoleArg::Writer => Role::Writer,
            RoleArg::Admin => Role::Admin,
        }
    }
}

#[derive(clap::Args, Debug)]
pub struct AuditArgs {
    /// Only lines since this long ago (30m, 24h, 7d) or this day (2026-12-01, UTC)
    #[arg(long, value_name = "WHEN")]
    since: Option<String>,
    /// Only the lines of this key (its id)
    #[arg(long, value_name = "ID")]
    key: Option<String>,
    /// At most this many lines, newest first
    #[arg(long, default_value_t = 100)]
    limit: usize,
    /// Lines of every tenant (default: --tenant's)
    #[arg(long)]
    all: bool,
    #[arg(long)]
    json: bool,
}

fn time(ms: Option<i64>) -> String {
    ms.map_or_else(|| "-".to_string(), format_ms)
}

/// `YYYY-MM-DD HH:MM:SS` (UTC) of Unix milliseconds.
pub fn format_ms(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

// Howard Hinnant's date algorithms (days since 1970-01-01 <-> proleptic Gregorian).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// `--since`: a duration ago (`30m`, `24h`, `7d`, `90s`) or a UTC day (`2026-12-01`), as
/// Unix milliseconds.
pub fn parse_since(s: &str, now_ms: i64) -> Result<i64, cairn_core::Error> {
    let bad = || {
        cairn_core::Error::user(format!(
            "--since {s:?}: give a duration ago (30m, 24h, 7d) or a day (2026-12-01)"
        ))
    };
    let s = s.trim();
    if let Some((unit, n)) = s
        .char_indices()
        .last()
        .map(|(i, c)| (c, &s[..i]))
        .filter(|(c, _)| "smhd".contains(*c))
    {
        let n: i64 = n.parse().map_err(|_| bad())?;
        let ms = match unit {
            's' => 1000,
            'm' => 60_000,
            'h' => 3_600_000,
            _ => 86_400_000,
        };
        return Ok(now_ms - n.checked_mul(ms).ok_or_else(bad)?);
    }
    let parts: Vec<&str> = s.split('-').collect();
    let [y, m, d] = parts[..] else {
        return Err(bad());
    };
    let (y, m, d): (i64, u32, u32) = (
        y.parse().map_err(|_| bad())?,
        m.parse().map_err(|_| bad())?,
        d.parse().map_err(|_| bad())?,
    );
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return Err(bad());
    }
    Ok(days_from_civil(y, m, d) * 86_400_000)
}

#[derive(Serialize)]
#[serde(transparent)]
struct Made(CreatedKey);

impl Render for Made {
    fn human(&self, out: &mut dyn Write) -> io::Result<()> {
        let k = &self.0.info;
        writeln!(out, "{}", self.0.key)?;
        writeln!(
            out,
            "key {} ({}) for tenant {}, groups [{}], expires {}: shown once, keep it now",
            k.id,
            k.role,
            k.tenant,
            k.groups.join(","),
            time(k.expires_at)
        )
    }
}

#[derive(Serialize)]
#[serde(transparent)]
struct Keys(KeyList);

fn state(k: &ApiKey) -> &'static str {
    if k.revoked_at.is_some() {
        "revoked"
    } else if !k.is_live(cairn_core::now_millis()) {
        "expired"
    } else {
        "live"
    }
}

impl Render for Keys {
    fn human(&self, out: &mut dyn Write) -> io::Result<()> {
        for k in &self.0.keys {
            writeln!(
                out,
                "{}  {:<7} {:<6} tenant={} groups=[{}] created {} last used {} expires {}  {}",
                k.id,
                state(k),
                k.role.as_str(),
                k.tenant,
                k.groups.join(","),
                time(Some(k.created_at)),
                time(k.last_used_at),
                time(k.expires_at),
                k.name
            )?;
        }
        writeln!(out, "{} keys", self.0.keys.len())
    }
}

#[derive(Serialize)]
#[serde(transparent)]
struct Gone(Revoked);

impl Render for Gone {
    fn human(&self, out: &mut dyn Write) -> io::Result<()> {
        writeln!(out, "revoked {}", self.0.revoked)
    }
}

#[derive(Serialize)]
#[serde(transparent)]
struct Lines(AuditLines);

impl Render for Lines {
    fn human(&self, out: &mut dyn Write) -> io::Result<()> {
        for l in &self.0.lines {
            writeln!(
                out,
                "{}  {:<8} {:<18} {:<6} {:<16} {} {}{}",
                format_ms(l.at),
                l.tenant,
                l.actor,
                l.role.as_str(),
                l.action,
                l.outcome,
                l.target.as_deref().unwrap_or(""),
                l.results
                    .map(|n| format!(" ({n} results)"))
                    .unwrap_or_default()
            )?;
        }
        writeln!(out, "{} lines", self.0.lines.len())
    }
}

/// Sends the request to the server that holds the data dir, with its token (the local
/// admin: every tenant's keys).
async fn remote<T: serde::de::DeserializeOwned + Send + 'static>(
    server: ServeInfo,
    method: &'static str,
    route: String,
    body: Option<serde_json::Value>,
) -> anyhow::Result<T> {
    eprintln!(
        "cairn serve (pid {}) holds the data dir; asking it ({})",
        server.pid, server.url
    );
    tokio::task::spawn_blocking(move || handoff::call(&server, method, &route, body.as_ref()))
        .await?
}

pub async fn run(config: Config, groups: &[String], command: Command) -> anyhow::Result<ExitCode> {
    let server = handoff::held_by_server(&config.data_dir)?;
    let tenant = config.tenant.clone();
    match command {
        Command::Create {
            role,
            name,
            expires_in_days,
            json,
        } => {
            let req = CreateKeyRequest {
                name,
                tenant: Some(tenant),
                groups: groups.to_vec(),
                role: role.into(),
                expires_in_days,
            };
            let made: CreatedKey = match server {
                Some(s) => {
                    remote(
                        s,
                        "POST",
                        "/v1/admin/keys".into(),
                        Some(serde_json::to_value(&req)?),
                    )
                    .await?
                }
                None => {
                    let app = App::open_without_graph(config).await?;
                    app.service()?.create_key(&app.principal(&[]), req).await?
                }
            };
            Printer::new(json).print(&Made(made))?;
        }
        Command::List { all, json } => {
            let list: KeyList = match server {
                Some(s) => {
                    let mut keys: KeyList = remote(s, "GET", "/v1/admin/keys".into(), None).await?;
                    if !all {
                        keys.keys.retain(|k| k.tenant == tenant);
                    }
                    keys
                }
                None => {
                    let app = App::open_without_graph(config).await?;
                    let t = (!all).then_some(tenant.as_str());
                    app.service()?.list_keys(&app.principal(&[]), t).await?
                }
            };
            Printer::new(json).print(&Keys(list))?;
        }
        Command::Revoke { id, json } => {
            let done: Revoked = match server {
                Some(s) => remote(s, "DELETE", format!("/v1/admin/keys/{id}"), None).await?,
                None => {
                    let app = App::open_without_graph(config).await?;
                    app.service()?.revoke_key(&app.principal(&[]), &id).await?
                }
            };
            Printer::new(json).print(&Gone(done))?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn audit(config: Config, args: AuditArgs) -> anyhow::Result<ExitCode> {
    let since = args
        .since
        .as_deref()
        .map(|s| parse_since(s, cairn_core::now_millis()))
        .transpose()?;
    let req = AuditRequest {
        since,
        key: args.key,
        limit: Some(args.limit),
        tenant: (!args.all).then(|| config.tenant.clone()),
    };
    let lines: AuditLines = match handoff::held_by_server(&config.data_dir)? {
        Some(s) => {
            let mut q = vec![format!("limit={}", args.limit)];
            if let Some(t) = &req.tenant {
                q.push(format!("tenant={}", encode(t)));
            }
            if let Some(since) = since {
                q.push(format!("since={since}"));
            }
            if let Some(k) = &req.key {
                q.push(format!("key={}", encode(k)));
            }
            remote(s, "GET", format!("/v1/admin/audit?{}", q.join("&")), None).await?
        }
        None => {
            let app = App::open_without_graph(config).await?;
            app.service()?.audit(&app.principal(&[]), &req).await?
        }
    };
    Printer::new(args.json).print(&Lines(lines))?;
    Ok(ExitCode::SUCCESS)
}

/// Percent-encodes a query-string value.
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_takes_durations_and_days() {
        let now = 1_800_000_000_000;
        assert_eq!(parse_since("30m", now).unwrap(), now - 30 * 60_000);
        assert_eq!(parse_since("7d", now).unwrap(), now - 7 * 86_400_000);
        assert_eq!(parse_since("1970-01-02", now).unwrap(), 86_400_000);
        assert_eq!(
            format_ms(parse_since("2026-12-06", now).unwrap()),
            "2026-12-06 00:00:00"
        );
        for bad in ["", "x", "5w", "-", "2026-13-01", "h", "2026-12"] {
            assert!(parse_since(bad, now).is_err(), "{bad:?}");
        }
        assert_eq!(format_ms(0), "1970-01-01 00:00:00");
        assert_eq!(format_ms(951_782_400_000), "2000-02-29 00:00:00");
    }
}
