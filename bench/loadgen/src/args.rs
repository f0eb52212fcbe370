//! `--key value` command-line options (repeatable keys keep every value) and the user list they describe.

use anyhow::{Context, Result, bail};
use std::collections::HashMap;
use std::str::FromStr;

pub struct Args {
    map: HashMap<String, Vec<String>>,
}

impl Args {
    pub fn parse(argv: &[String]) -> Result<Args> {
        let mut map: HashMap<String, Vec<String>> = HashMap::new();
        let mut it = argv.iter().peekable();
        while let Some(a) = it.next() {
            let Some(key) = a.strip_prefix("--") else {
                bail!("unexpected argument {a:?}");
            };
            // A key followed by another key (or nothing) is a switch.
            let value = match it.peek() {
                Some(v) if !v.starts_with("--") => it.next().cloned().unwrap_or_default(),
                _ => "true".to_string(),
            };
            map.entry(key.to_string()).or_default().push(value);
        }
        Ok(Args { map })
    }

    pub fn str(&self, key: &str, default: &str) -> String {
        self.map
            .get(key)
            .and_then(|v| v.last())
            .cloned()
            .unwrap_or_else(|| default.to_string())
    }

    pub fn all(&self, key: &str) -> Vec<String> {
        self.map.get(key).cloned().unwrap_or_default()
    }

    pub fn flag(&self, key: &str) -> bool {
        self.map.contains_key(key)
    }

    pub fn num<T: FromStr>(&self, key: &str, default: T) -> Result<T>
    where
        T::Err: std::fmt::Display,
    {
        match self.map.get(key).and_then(|v| v.last()) {
            None => Ok(default),
            Some(s) => s
                .parse()
                .map_err(|e| anyhow::anyhow!("{e}"))
                .with_context(|| format!("--{key} {s:?}")),
        }
    }

    pub fn required(&self, key: &str) -> Result<String> {
        self.map
            .get(key)
            .and_then(|v| v.last())
            .cloned()
            .with_context(|| format!("--{key} is required"))
    }

    /// The address of user number `n` (1-based): `--user-fmt` with `{}` replaced by `n`.
    pub fn user(&self, n: usize) -> String {
        self.str("user-fmt", "user{}@bench.test")
            .replace("{}", &n.to_string())
    }

    pub fn endpoint(&self) -> Result<crate::net::Endpoint> {
        Ok(crate::net::Endpoint {
            host: self.str("host", "127.0.0.1"),
            port: self.num("port", 0u16)?,
            tls: self.flag("tls"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::Args;

    #[test]
    fn switches_values_and_repeats() {
        let argv: Vec<String> = [
            "--tls",
            "--port",
            "993",
            "--pid",
            "1",
            "--pid",
            "2",
            "--user-fmt",
            "u{}@x",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let a = Args::parse(&argv).unwrap();
        assert!(a.flag("tls"));
        assert_eq!(a.num("port", 0u16).unwrap(), 993);
        assert_eq!(a.all("pid"), ["1", "2"]);
        assert_eq!(a.user(7), "u7@x");
        assert!(a.num::<u16>("user-fmt", 0).is_err());
        assert!(Args::parse(&["stray".to_string()]).is_err());
    }
}
