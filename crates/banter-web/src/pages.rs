//! The HTML pages and the routes that serve them and their assets. Pages are rendered from
//! embedded templates; user-controlled values are validated video ids, HTML-escaped anyway.
//! HTML is `no-cache` (always revalidated, so a deploy is seen at once); versioned assets are
//! immutable for a year; an unversioned or outdated asset URL is `no-cache` with an ETag.
//!
//! Kept out: the files themselves (`assets`) and the security headers (`headers`).

use actix_web::{
    HttpRequest, HttpResponse,
    http::header::{self, ContentType},
    web,
};
use banter_core::VideoId;

use crate::{Assets, WebConfig, headers::secure};

pub struct Site {
    assets: Assets,
    index: String,
    video: String,
    not_found: String,
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

impl Site {
    pub fn new(config: &WebConfig) -> Site {
        let assets = Assets::embedded();
        let style = assets.url("style.css");
        let links: Vec<String> = config
            .demo_videos
            .iter()
            .filter(|id| VideoId::parse(id).is_ok())
            .map(|id| {
                let id = escape(id);
                format!("    <li><a href=\"/videos/{id}\">{id}</a></li>")
            })
            .collect();
        let index = include_str!("../assets/index.html")
            .replace("{{style_css}}", &style)
            .replace("{{video_links}}", &links.join("\n"));
        let video = include_str!("../assets/video.html")
            .replace("{{style_css}}", &style)
            .replace("{{app_js}}", &assets.url("app.js"));
        let not_found = include_str!("../assets/index.html")
            .replace("{{style_css}}", &style)
            .replace(
                "{{video_links}}",
                "    <li>There is no such video here. Video ids are 1 to 64 letters, digits, - and _.</li>",
            );
        Site {
            assets,
            index,
            video,
            not_found,
        }
    }
}

fn html(status: actix_web::http::StatusCode, body: String) -> HttpResponse {
    secure(&mut HttpResponse::build(status))
        .content_type(ContentType::html())
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .body(body)
}

pub async fn index(site: web::Data<Site>) -> HttpResponse {
    html(actix_web::http::StatusCode::OK, site.index.clone())
}

pub async fn video(site: web::Data<Site>, id: web::Path<String>) -> HttpResponse {
    match VideoId::parse(&id) {
        Ok(_) => html(
            actix_web::http::StatusCode::OK,
            site.video.replace("{{video_id}}", &escape(&id)),
        ),
        Err(_) => html(
            actix_web::http::StatusCode::NOT_FOUND,
            site.not_found.clone(),
        ),
    }
}

pub async fn asset(
    site: web::Data<Site>,
    name: web::Path<String>,
    req: HttpRequest,
) -> HttpResponse {
    let Some(asset) = site.assets.get(&name) else {
        return html(
            actix_web::http::StatusCode::NOT_FOUND,
            site.not_found.clone(),
        );
    };
    let etag = format!("\"{}\"", asset.version);
    let versioned =
        web::Query::<std::collections::HashMap<String, String>>::from_query(req.query_string())
            .ok()
            .and_then(|q| q.get("v").cloned())
            .is_some_and(|v| v == asset.version);
    let cache = if versioned {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    };
    let mut response = HttpResponse::Ok();
    secure(&mut response)
        .insert_header((header::CACHE_CONTROL, cache))
        .insert_header((header::ETAG, etag.clone()));
    let fresh = req
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
    if fresh {
        return response
            .status(actix_web::http::StatusCode::NOT_MODIFIED)
            .finish();
    }
    response
        .content_type(asset.content_type)
        .body(asset.body.clone())
}

#[cfg(test)]
mod tests {
    use actix_web::{App, http::StatusCode, test};

    use super::*;

    fn config() -> WebConfig {
        WebConfig {
            demo_videos: vec!["intro".into(), "<bad>".into()],
        }
    }

    #[actix_web::test]
    async fn pages_are_html_with_a_strict_policy_and_no_cache() {
        let config = config();
        let app =
            test::init_service(App::new().configure(|cfg| crate::configure(cfg, &config))).await;
        for (path, status) in [
            ("/", StatusCode::OK),
            ("/videos/intro", StatusCode::OK),
            ("/videos/%3Cscript%3E", StatusCode::NOT_FOUND),
        ] {
            let res =
                test::call_service(&app, test::TestRequest::get().uri(path).to_request()).await;
            assert_eq!(res.status(), status, "{path}");
            let h = res.headers();
            assert_eq!(h.get("cache-control").unwrap(), "no-cache");
            assert!(
                h.get("content-type")
                    .unwrap()
                    .to_str()
                    .unwrap()
                    .starts_with("text/html")
            );
            let csp = h.get("content-security-policy").unwrap().to_str().unwrap();
            assert!(csp.contains("script-src 'self'") && !csp.contains("unsafe"));
            assert_eq!(h.get("x-content-type-options").unwrap(), "nosniff");
            let body = String::from_utf8(test::read_body(res).await.to_vec()).unwrap();
            assert!(
                !body.contains("<script>") && !body.contains("{{"),
                "{path}: {body}"
            );
        }
        let index =
            test::call_and_read_body(&app, test::TestRequest::get().uri("/").to_request()).await;
        let index = String::from_utf8(index.to_vec()).unwrap();
        assert!(index.contains("href=\"/videos/intro\""));
        assert!(!index.contains("bad"), "invalid demo ids are left out");
        let page = test::call_and_read_body(
            &app,
            test::TestRequest::get().uri("/videos/intro").to_request(),
        )
        .await;
        let page = String::from_utf8(page.to_vec()).unwrap();
        assert!(page.contains("data-video=\"intro\""));
        assert!(page.contains("/assets/app.js?v="));
    }

    #[actix_web::test]
    async fn versioned_assets_are_immutable_and_revalidate_by_etag() {
        let config = config();
        let app =
            test::init_service(App::new().configure(|cfg| crate::configure(cfg, &config))).await;
        let assets = Assets::embedded();
        let url = assets.url("app.js");
        let res = test::call_service(&app, test::TestRequest::get().uri(&url).to_request()).await;
        assert_eq!(res.status(), StatusCode::OK);
        assert_eq!(
            res.headers().get("cache-control").unwrap(),
            "public, max-age=31536000, immutable"
        );
        assert!(
            res.headers()
                .get("content-type")
                .unwrap()
                .to_str()
                .unwrap()
                .starts_with("text/javascript")
        );
        let etag = res.headers().get("etag").unwrap().clone();
        let stale = test::call_service(
            &app,
            test::TestRequest::get()
                .uri("/assets/app.js?v=old")
                .to_request(),
        )
        .await;
        assert_eq!(stale.headers().get("cache-control").unwrap(), "no-cache");
        let again = test::call_service(
            &app,
            test::TestRequest::get()
                .uri("/assets/app.js")
                .insert_header(("if-none-match", etag))
                .to_request(),
        )
        .await;
        assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
        for missing in ["/assets/nope.js", "/assets/..%2FCargo.toml"] {
            let res =
                test::call_service(&app, test::TestRequest::get().uri(missing).to_request()).await;
            assert_eq!(res.status(), StatusCode::NOT_FOUND, "{missing}");
        }
    }
}
