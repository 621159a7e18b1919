from bankside.urls import urlpatterns as project_urls
from linking.tests.fake_idp import urlpatterns as idp_urls

urlpatterns = [*idp_urls, *project_urls]
