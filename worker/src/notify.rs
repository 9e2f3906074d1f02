//! Stage 6: notices. Channels (DingTalk, SMS, email, WeCom, Feishu, webhook) arrive with the
//! review issue; today the stage records which channel is configured and that nothing was sent.
use crate::context::Run;
use hippo_shared::events::Stage;

pub async fn run(run: &Run, outcome: &str) {
    let channel = run.spec.notice.channel.as_str();
    if !channel.is_empty() && channel != "off" {
        run.events.info(Stage::Notify, format!("notice channel '{channel}' is configured but sending is not implemented yet; release {outcome}"));
    }
}
