//! Apple configuration profile (`.mobileconfig`, unsigned) for one account,
//! handed out only after HTTP Basic authentication.

use sha2::{Digest, Sha256};

use crate::config::HttpConfig;
use crate::xml::escape;

/// A stable UUID-shaped string, so reinstalling replaces the same profile.
fn uuid_for(seed: &str) -> String {
    let h = hex::encode(&Sha256::digest(seed.as_bytes())[..16]);
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

pub fn profile(cfg: &HttpConfig, email: &str) -> String {
    let e = escape(email);
    let host = escape(&cfg.hostname);
    let p = &cfg.ports;
    let (imap_port, imap_ssl) = if p.imaps != 0 {
        (p.imaps, true)
    } else {
        (p.imap, false)
    };
    let (smtp_port, smtp_ssl) = if p.submissions != 0 {
        (p.submissions, true)
    } else {
        (p.submission, false)
    };
    let b = |v: bool| if v { "<true/>" } else { "<false/>" };
    let reversed: Vec<&str> = cfg.hostname.rsplit('.').collect();
    let ident = escape(&reversed.join("."));
    let outer = uuid_for(&format!("profile:{email}"));
    let inner = uuid_for(&format!("mail:{email}"));
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<plist version="1.0">
<dict>
  <key>PayloadContent</key>
  <array>
    <dict>
      <key>EmailAccountDescription</key><string>{e}</string>
      <key>EmailAccountType</key><string>EmailTypeIMAP</string>
      <key>EmailAddress</key><string>{e}</string>
      <key>IncomingMailServerAuthentication</key><string>EmailAuthPassword</string>
      <key>IncomingMailServerHostName</key><string>{host}</string>
      <key>IncomingMailServerPortNumber</key><integer>{imap_port}</integer>
      <key>IncomingMailServerUseSSL</key>{}
      <key>IncomingMailServerUsername</key><string>{e}</string>
      <key>OutgoingMailServerAuthentication</key><string>EmailAuthPassword</string>
      <key>OutgoingMailServerHostName</key><string>{host}</string>
      <key>OutgoingMailServerPortNumber</key><integer>{smtp_port}</integer>
      <key>OutgoingMailServerUseSSL</key>{}
      <key>OutgoingMailServerUsername</key><string>{e}</string>
      <key>OutgoingPasswordSameAsIncomingPassword</key><true/>
      <key>PayloadDisplayName</key><string>{e}</string>
      <key>PayloadIdentifier</key><string>{ident}.mail.{inner}</string>
      <key>PayloadType</key><string>com.apple.mail.managed</string>
      <key>PayloadUUID</key><string>{inner}</string>
      <key>PayloadVersion</key><integer>1</integer>
    </dict>
  </array>
  <key>PayloadDisplayName</key><string>Mail: {e}</string>
  <key>PayloadIdentifier</key><string>{ident}.profile.{outer}</string>
  <key>PayloadRemovalDisallowed</key><false/>
  <key>PayloadType</key><string>Configuration</string>
  <key>PayloadUUID</key><string>{outer}</string>
  <key>PayloadVersion</key><integer>1</integer>
</dict>
</plist>
"#,
        b(imap_ssl),
        b(smtp_ssl)
    )
}
