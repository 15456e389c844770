//! Can we respond? A plan that checks clean, an owner who can be reached for every severity,
//! escalation that goes somewhere, and kir's own permissions in the cluster.

use kir_detect::Level;
use kir_plan::schema::ChannelKind;

use crate::inventory::name;
use crate::rbac::bindings;
use crate::{Area, Check, Input, Status};

/// deploy/rbac.yaml's roles: what `kir collect` and `kir contain` need.
const KIR_ROLES: &[&str] = &["kir-collect", "kir-contain"];

pub fn checks(input: &Input) -> Vec<Check> {
    let mut out = Vec::new();
    let clean = Check::new("plan-checks-clean", "The plan checks clean", Area::Respond, Level::High);
    let owned =
        Check::new("severities-owned", "Every severity has an owner who can be reached", Area::Respond, Level::High);
    let escalates = Check::new(
        "escalation-targets",
        "Every escalation level notifies someone reachable",
        Area::Respond,
        Level::Medium,
    );
    match input.plan {
        None if !input.plan_errors.is_empty() => {
            let why = "the plan does not load";
            out.extend([
                clean.failed(
                    Status::Fail,
                    input.plan_errors.join("; "),
                    "kir plan check --plan PLAN, and fix what it names",
                ),
                owned.unknown(why),
                escalates.unknown(why),
            ]);
        }
        None => {
            let why = "no plan given (--plan, or KIR_PLAN); kir plan init writes a starter";
            out.extend([clean.unknown(why), owned.unknown(why), escalates.unknown(why)]);
        }
        Some((plan, text)) => {
            let problems: Vec<String> = kir_plan::check::check(plan, text)
                .into_iter()
                .filter(|p| p.is_error())
                .map(|p| format!("{}: {}", p.field, p.message))
                .collect();
            out.push(if problems.is_empty() {
                clean.pass("kir plan check finds no error")
            } else {
                clean.failed(Status::Fail, problems.join("; "), "kir plan check --plan PLAN, and fix what it names")
            });

            let reachable = |role_id: &str| -> bool {
                plan.roles.iter().find(|r| r.id == role_id).is_some_and(|r| {
                    let has_people =
                        !r.contacts.is_empty() || r.rotation.as_ref().is_some_and(|rot| !rot.members.is_empty());
                    let has_channel =
                        r.notify.iter().any(|c| plan.channels.iter().any(|ch| &ch.id == c && channel_configured(ch)));
                    has_people && has_channel
                })
            };
            let mut gaps = Vec::new();
            for s in &plan.severities {
                match plan.ownership.iter().find(|o| o.severities.contains(&s.id)) {
                    None => gaps.push(format!("{} has no owner", s.id)),
                    Some(o) if !reachable(&o.owner) => gaps
                        .push(format!("{} is owned by {}, who has no contact or no configured channel", s.id, o.owner)),
                    Some(_) => {}
                }
            }
            for r in input.notification_test.iter().flatten().filter(|r| !r.delivered) {
                gaps.push(format!("the test notification to {} reached no channel ({})", r.role, r.detail));
            }
            let tested = input
                .notification_test
                .as_ref()
                .map(|t| t.iter().map(|r| format!("{}: {}", r.role, r.detail)).collect::<Vec<_>>().join("; "));
            out.push(if gaps.is_empty() {
                owned.pass(match tested {
                    Some(t) => format!("every severity's owner was reached by a test notification ({t})"),
                    None => "every severity's owner has contacts and a configured channel (--test-notify sends a test)".into(),
                })
            } else {
                owned.failed(
                    Status::Fail,
                    gaps.join("; "),
                    "ownership: [{severities: [critical], owner: soc, policy: soc-critical}], and the role's notify: [CHANNEL] with contacts",
                )
            });

            let mut dead_ends = Vec::new();
            for p in &plan.escalation_policies {
                if p.levels.is_empty() {
                    dead_ends.push(format!("{} has no levels", p.id));
                }
                for (i, level) in p.levels.iter().enumerate() {
                    if level.notify.is_empty() || !level.notify.iter().any(|r| reachable(r)) {
                        dead_ends.push(format!("{} level {} notifies no reachable role", p.id, i + 1));
                    }
                }
            }
            out.push(if dead_ends.is_empty() {
                escalates.pass("every level notifies a role with contacts and a channel")
            } else {
                escalates.failed(
                    Status::Fail,
                    dead_ends.join("; "),
                    "give each level notify: [ROLE] of a role with contacts and a channel",
                )
            });
        }
    }

    let rbac = Check::new(
        "kir-response-rbac",
        "kir's collect and contain roles exist and are bound",
        Area::Respond,
        Level::Medium,
    );
    out.push(match input.inventory {
        None => rbac.unknown("no cluster inventory"),
        Some(inv) if !inv.has_kind("ClusterRole") => rbac.unknown("the inventory has no ClusterRoles listed"),
        Some(inv) => {
            let missing: Vec<&str> = KIR_ROLES
                .iter()
                .copied()
                .filter(|role| {
                    let exists = inv.of_kind("ClusterRole").any(|r| name(r) == *role);
                    let bound =
                        bindings(inv).any(|b| b.pointer("/roleRef/name").and_then(|n| n.as_str()) == Some(role));
                    !(exists && bound)
                })
                .collect();
            if missing.is_empty() {
                rbac.pass("kir-collect and kir-contain exist and are bound")
            } else {
                rbac.failed(
                    Status::Warn,
                    format!("not in place: {} (responders will find out during the incident)", missing.join(", ")),
                    "kubectl apply -f deploy/rbac.yaml, and bind the roles to the responders' group",
                )
            }
        }
    });

    let key = Check::new("evidence-signing", "Evidence bundles are signed", Area::Respond, Level::Low);
    out.push(match &input.evidence_key {
        None => key.failed(
            Status::Warn,
            "no signing key given (--sign-key): bundles are hashed and have a custody chain, but are not signed",
            "kir evidence keygen --out kir-signing.key, keep it off the cluster, and pass --sign-key to collect and respond",
        ),
        Some(Ok(())) => key.pass("the signing key loads"),
        Some(Err(why)) => key.failed(Status::Fail, format!("the signing key cannot be used: {why}"), "kir evidence keygen --out kir-signing.key"),
    });

    let permitted = Check::new(
        "containment-permitted",
        "The playbooks' containment actions are permitted",
        Area::Respond,
        Level::High,
    );
    out.push(match &input.permissions {
        None => permitted
            .unknown("only the live cluster can tell (SelfSubjectAccessReview): run kir readiness without --from"),
        Some(denied) if denied.is_empty() => {
            permitted.pass("every permission the containment actions need is granted to you")
        }
        Some(denied) => permitted.failed(
            Status::Fail,
            format!("you may not: {}", denied.join("; ")),
            "kubectl apply -f deploy/rbac.yaml and bind kir-contain to the responders",
        ),
    });
    out
}

fn channel_configured(ch: &kir_plan::schema::Channel) -> bool {
    let env_set =
        |name: &Option<String>| name.as_ref().is_some_and(|n| std::env::var_os(n).is_some_and(|v| !v.is_empty()));
    match ch.kind {
        ChannelKind::Email => ch.smtp.is_some(),
        ChannelKind::Pagerduty => env_set(&ch.routing_key_env) || ch.url.is_some(),
        ChannelKind::Slack | ChannelKind::Webhook => ch.url.is_some() || ch.url_env.is_some(),
    }
}
