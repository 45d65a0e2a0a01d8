"""A small bundled sample corpus, one file per supported input format.

Every sentence here was written for this project (encyclopedic, news and
Q&A style prose about ordinary topics and a fictional town, 云岭镇); nothing is
copied from a public corpus.  The files imitate the real formats closely
enough to exercise the readers, the cleaning rules and deduplication:

* ``zhwiki/zhwiki-20240101-pages-articles.xml.bz2`` -- MediaWiki XML export
* ``wikiextractor/AA/wiki_00`` -- wikiextractor ``<doc>`` blocks
* ``wikiextractor_json/AA/wiki_00`` -- wikiextractor ``--json``
* ``wiki2019zh/wiki_zh_sample.jsonl`` -- nlp_chinese_corpus wiki2019zh
* ``news2016zh/news2016zh_sample.json`` -- nlp_chinese_corpus news2016zh
* ``baike2018qa/baike_qa_sample.json`` -- nlp_chinese_corpus baike2018qa
* ``webtext2019zh/web_text_zh_sample.json`` -- nlp_chinese_corpus webtext2019zh
* ``chinesewebtext/cleared_sample.jsonl`` -- CCNet / ChineseWebText
* ``plain/bert_format.txt`` -- google-research/bert pretraining text

``write_sample(out_dir)`` is deterministic: the same bytes on every call.
``EXPECTED`` records the facts tests can rely on.

Usage: ``python -m pipeline.sample OUT_DIR``
"""

from __future__ import annotations

import base64
import bz2
import hashlib
import json
import pathlib
import sys

ZHWIKI = "zhwiki/zhwiki-20240101-pages-articles.xml.bz2"
WIKIEXTRACTOR = "wikiextractor/AA/wiki_00"
WIKIEXTRACTOR_JSON = "wikiextractor_json/AA/wiki_00"
WIKI2019ZH = "wiki2019zh/wiki_zh_sample.jsonl"
NEWS2016ZH = "news2016zh/news2016zh_sample.json"
BAIKE2018QA = "baike2018qa/baike_qa_sample.json"
WEBTEXT2019ZH = "webtext2019zh/web_text_zh_sample.json"
CHINESEWEBTEXT = "chinesewebtext/cleared_sample.jsonl"
PLAIN = "plain/bert_format.txt"


# ---------------------------------------------------------------------------
# zhwiki: MediaWiki XML export
# ---------------------------------------------------------------------------

WIKI_QINGXI = """{{Infobox river
| name              = 青溪河
| image             = Qingxi River at dusk.jpg
| image_caption     = 黄昏时的青溪河中游河段
| source1_location  = [[云岭山脉]]东麓
| mouth_location    = [[白沙湖]]
| length            = {{convert|186|km|mi|abbr=on}}
| basin_size        = {{convert|4320|km2|sqmi|abbr=on}}
| tributaries_left  = [[松涧]]、[[石门溪]]
| tributaries_right = [[桃花溪]]
}}
'''青溪河'''是[[云岭镇]]一带最大的河流，发源于[[云岭山脉]]东麓的山谷，自西向东流经三个县，最后注入[[白沙湖]]。河流全长约186公里，流域面积约4320平方公里<ref name="nianjian">{{cite book |author=青溪河水文站 |title=青溪河流域水文年鉴 |year=2019 |page=12}}</ref>。因上游河水清澈、河床多青灰色卵石而得名。

== 地理 ==
青溪河上游穿行于峡谷之间，落差较大，水流湍急；中游进入丘陵地带，河道变宽，两岸多为[[梯田]]和竹林；下游地势平坦，河道弯曲，形成多处[[河漫滩|沙洲]]。每年四月至六月为丰水期，冬季水位明显下降，部分浅滩可以徒步涉过<ref name="nianjian" />。

=== 主要支流 ===
{| class="wikitable sortable"
|+ 青溪河主要支流
! 名称 !! 汇入位置 !! 长度（公里） !! 备注
|-
| [[松涧]] || 左岸 || 42 || 上游最大支流
|-
| [[石门溪]] || 左岸 || 35 || 建有小型-{zh-hans:水坝;zh-hant:水壩}-
|-
| [[桃花溪]] || 右岸 || 28 || 沿岸多桃林
|}

== 历史 ==
据地方志记载，早在数百年前，沿岸居民便利用青溪河运输木材和茶叶<ref>{{cite web |url=https://example.org/qingxi/history |title=青溪河航运小史 |publisher=云岭镇文化站 |date=2018-05-20 |accessdate=2023-10-01}}</ref>。清代中期，下游曾设有多个渡口，其中以'''柳湾渡'''最为繁忙。二十世纪七十年代沿河公路通车以后，河运逐渐衰落。

[[File:Liuwan ferry old photo.jpg|thumb|left|柳湾渡旧照]]

== 生态 ==
* 河中常见的鱼类有[[鲫鱼]]、[[鳜鱼]]和多种小型[[虾虎鱼]]。
* 中游湿地是[[白鹭]]和[[苍鹭]]的重要栖息地。
* 近年来，当地在河岸种植芦苇和柳树，以减少水土流失。

== 参考文献 ==
{{reflist}}

== 外部链接 ==
* [https://example.org/qingxi 青溪河流域介绍]

{{云岭镇}}

[[Category:河流]]
[[Category:云岭镇地理]]

[[en:Qingxi River]]"""

WIKI_YUNLING = """{{Infobox settlement
| name                = 云岭镇
| settlement_type     = [[镇]]
| image_skyline       = Yunling town view.jpg
| image_caption       = 从北山远眺云岭镇
| coordinates         = {{coord|27|30|N|112|10|E|display=inline,title}}
| population_total    = 23,600
| population_as_of    = 2020年
| area_total_km2      = 156.4
| elevation_m         = 420
| website             = {{URL|example.org/yunling}}
}}
'''云岭镇'''是位于[[青溪河]]上游河谷中的一个小镇，四周群山环抱，镇区沿河呈带状分布。全镇辖12个行政村，2020年常住人口约2.36万<ref name="census">{{cite report |title=云岭镇人口普查资料汇编 |publisher=云岭镇人民政府 |year=2021}}</ref>。

== 名称 ==
当地传说，每逢雨后，镇北的山岭便被白云缠绕，终日不散，'''云岭'''之名由此而来。

== 经济 ==
云岭镇以农业和茶叶种植为主，所产绿茶在周边地区颇有名气。近年来，镇上发展[[乡村旅游]]，老街的木结构民居经过修缮后开放参观。每周三和周日为集市日，附近村民会把蔬菜、竹器和自制的腊肉带到镇上出售。

{| class="wikitable"
! 年份 !! 茶园面积（公顷） !! 游客人次（万）
|-
| 2016 || 820 || 4.1
|-
| 2018 || 905 || 6.7
|-
| 2020 || 960 || 5.2
|}

== 交通 ==
* 县道穿镇而过，每天有公交车往返县城。
* [[云岭站]]是一座小型铁路车站，只停靠普通旅客列车。
* 镇东的'''老石桥'''建于十九世纪，是一座[[石拱桥|单孔石拱桥]]，现为步行桥。

== 文化 ==
每年农历八月，镇上举行“-{zh-hans:采茶节;zh-hant:採茶節}-”，活动包括采茶比赛、山歌对唱和[[舞龙]]表演<ref>{{cite news |title=云岭镇举办第十届采茶节 |work=县日报 |date=2019-09-15}}</ref>。

[[File:Yunling old street.jpg|thumb|right|250px|云岭镇老街]]

== 参见 ==
* [[青溪河]]
* [[石拱桥]]

== 参考资料 ==
<references />

{{云岭镇}}

[[Category:乡镇]]
[[Category:云岭镇地理]]

[[en:Yunling Town]]"""

WIKI_BRIDGE_HANT = """{{Infobox bridge
| bridge_name = 石拱橋
| image       = Stone arch bridge example.jpg
| caption     = 一座典型的單孔石拱橋
| carries     = 行人、車輛
| design      = [[拱橋]]
| material    = [[石材]]
| mainspan    = {{convert|5|-|40|m|ft|abbr=on}}
}}
'''石拱橋'''是以石塊砌成拱形結構、依靠拱的受壓作用承受荷載的[[橋樑]]，是世界上最古老的橋樑類型之一。石拱橋的主拱由楔形石塊拼成，石塊之間相互擠壓，將橋面上的重量傳遞到兩岸的橋臺<ref name="struct">{{cite book |author=陳文遠 |title=橋樑結構入門 |publisher=土木出版社 |year=2015 |pages=45–47}}</ref>。

== 結構 ==
一座石拱橋通常由以下部分組成：
* '''拱圈'''：橋的主要承重部分，多為半圓形或弧形。
* '''拱上建築'''：拱圈以上的填料與橋面。
* '''橋臺'''與'''橋墩'''：把荷載傳給地基的部分。

跨度較大的石拱橋常在拱肩上開設小拱，稱為'''敞肩拱'''，既能減輕自重，又便於洪水通過。

== 歷史 ==
古代許多文明都曾建造石拱橋。[[古羅馬]]人修築了大量石拱橋和[[渡槽]]，部分至今仍在使用。中國現存最著名的古代石拱橋之一是[[趙州橋]]，建於隋代，採用單孔弧形敞肩拱。在東亞，石拱橋多見於河網密集的地區，江南水鄉的石拱橋常與街巷、碼頭連成一體<ref>{{cite journal |title=水鄉橋樑的空間形態 |journal=建築史研究 |volume=12 |year=2008}}</ref>。

{| class="wikitable"
|+ 常見拱形比較
! 拱形 !! 特點 !! 適用情況
|-
| 半圓拱 || 受力均勻，橋身較高 || 中小跨度
|-
| 弧形拱 || 矢高較低，橋面平緩 || 需要通行車輛時
|-
| 尖拱 || 水平推力較小 || 多見於中世紀歐洲
|}

== 維護 ==
石拱橋的主要病害包括石縫風化、拱圈開裂和基礎沖刷。修繕時一般儘量使用與原橋相同的石料和灰漿，以保持-{zh-hans:文物;zh-hant:古蹟}-的原貌。

[[File:Arch bridge diagram.svg|thumb|石拱橋各部分示意圖]]

== 參見 ==
* [[拱橋]]
* [[雲嶺鎮|雲嶺鎮老石橋]]

== 參考文獻 ==
{{Reflist}}

[[Category:橋樑]]
[[Category:拱橋]]

[[en:Arch bridge]]
[[de:Bogenbrücke]]"""

WIKI_OOLONG_HANT = """{{Infobox tea
| name        = 烏龍茶
| image       = Oolong tea leaves.jpg
| caption     = 捲曲成球狀的烏龍茶乾茶
| type        = 半發酵茶
| origin      = [[中國]]、-{zh-hans:台湾;zh-hant:臺灣}-
| temperature = {{convert|90|-|100|C|F}}
| time        = 約1分鐘，可多次沖泡
}}
'''烏龍茶'''，又稱'''青茶'''，是一類經過部分氧化（俗稱「半發酵」）的[[茶]]，其氧化程度介於[[綠茶]]與[[紅茶]]之間。烏龍茶的香氣多樣，從清新的花香到濃郁的焙火香都有<ref name="tea">{{cite book |title=茶葉加工學 |year=2012 |page=88}}</ref>。

== 製作 ==
烏龍茶的製作工序大致包括：
* 萎凋：讓鮮葉散失部分水分。
* 做青：反覆搖動茶葉，使葉緣細胞受損而逐漸氧化，形成「綠葉紅鑲邊」。
* 殺青：以高溫停止氧化。
* 揉捻與乾燥：使茶葉成形並降低含水量。
* 焙火：部分茶品會再經過長時間烘焙，以增加醇厚度。

== 主要產區 ==
{| class="wikitable"
! 產區 !! 代表茶品 !! 風味特點
|-
| [[福建]]北部 || [[武夷岩茶]] || 焙火香明顯
|-
| 福建南部 || [[鐵觀音]] || 蘭花香
|-
| [[廣東]]東部 || [[鳳凰單叢]] || 香型豐富
|-
| [[臺灣]] || [[凍頂烏龍茶]]、[[高山茶]] || 清香或熟香
|}

== 沖泡 ==
沖泡烏龍茶時常使用[[紫砂壺]]或[[蓋碗]]，投茶量較多，以接近沸騰的熱水快速出湯，同一份茶葉可以沖泡五、六次甚至更多。這種講究器具與程序的飲茶方式在潮汕地區稱為'''[[工夫茶|工夫茶]]'''<ref>{{cite web |url=https://example.com/tea/gongfu |title=工夫茶的源流 |accessdate=2022-03-11}}</ref>。

[[File:Gaiwan oolong.jpg|thumb|用蓋碗沖泡烏龍茶]]

== 參考資料 ==
{{reflist}}

{{茶}}

[[Category:烏龍茶|*]]
[[Category:中國茶]]

[[en:Oolong]]
[[fr:Oolong]]"""

WIKI_LIBRARY = """{{Infobox library
| library_name    = 白沙湖市图书馆
| image           = Baishahu Library new building.jpg
| caption         = 滨湖路新馆
| established     = {{start date|1956}}
| location        = [[白沙湖市]]滨湖路
| collection_size = 约120万册（件）
| num_branches    = 7
| website         = {{URL|https://library.example.org}}
}}
'''白沙湖市图书馆'''是[[白沙湖市]]的综合性[[公共图书馆]]，前身为1956年设立的市民阅览室。现馆舍位于滨湖路，2012年落成，建筑面积约3.2万平方米，设有七个分馆和多处社区借阅点<ref name="annual">{{cite report |title=白沙湖市图书馆年度报告 |year=2022 |publisher=白沙湖市图书馆}}</ref>。

== 历史 ==
图书馆最初设在老城区的一座两层砖楼内，只有一间阅览室和一个书库。二十世纪八十年代，随着藏书增加，图书馆迁入原[[白沙湖师范学校|师范学校]]的旧址。2008年，市政府决定在湖滨新区建设新馆，新馆于2012年秋季正式开放。

== 建筑 ==
新馆外墙采用浅色石材和大面积玻璃幕墙，中央是一座贯通五层的中庭。屋顶设有'''湖景阅览平台'''，读者可以一边读书一边眺望[[白沙湖]]。

== 服务 ==
* 借阅：持读者证可一次借阅图书十册，借期三十天。
* 少儿服务：设有低幼阅读区，每周末举办故事会。
* 数字资源：提供电子书、期刊-{zh-hans:数据库;zh-hant:資料庫}-和古籍影像的在线查阅。
* 夜间开放：2019年起，一楼自修室开放至晚上十点<ref>{{cite news |url=https://news.example.com/2019/library-night |title=市图书馆自修室延长开放时间 |work=白沙湖晚报 |date=2019-03-01}}</ref>。

{| class="wikitable"
|+ 近年服务数据
! 年份 !! 到馆人次（万） !! 外借册次（万） !! 举办活动（场）
|-
| 2019 || 186 || 142 || 610
|-
| 2020 || 74 || 88 || 305
|-
| 2021 || 131 || 119 || 482
|}

[[File:Baishahu Library atrium.jpg|thumb|新馆中庭]]

== 参考资料 ==
{{reflist}}

[[Category:白沙湖市建筑]]
[[Category:公共图书馆]]

[[en:Baishahu Library]]"""

WIKI_MEIYU = """{{about|东亚的天气现象|其他用法|梅雨 (消歧义)}}
'''梅雨'''，又称'''黄梅雨'''或'''霉雨'''，是[[东亚]]地区初夏时节出现的持续性降雨天气。此时恰逢江南一带[[梅子]]成熟，故名“梅雨”；又因空气潮湿，衣物和食物容易发霉，民间也写作“霉雨”<ref name="qixiang">{{cite book |author=许明远 |title=东亚季风气候 |year=2016 |pages=102–105}}</ref>。

== 成因 ==
每年初夏，[[副热带高压]]逐渐向北推进，其边缘的暖湿气流与北方南下的冷空气在长江中下游至日本南部一带相遇，形成一条大致呈东西走向、移动缓慢的[[锋面]]，称为'''梅雨锋'''。锋面附近上升气流旺盛，云层深厚，因此降雨时间长、范围广，有时伴有[[暴雨]]。当副热带高压继续北跳，雨带随之北移，当地的梅雨季节便告结束。

== 各地梅雨期 ==
{| class="wikitable"
! 地区 !! 当地名称 !! 大致起止时间
|-
| [[台湾]] || 梅雨 || 五月中旬至六月中旬
|-
| [[长江中下游平原|长江中下游]] || 梅雨、黄梅天 || 六月中旬至七月上中旬
|-
| [[日本]]本州 || 梅雨（tsuyu） || 六月上旬至七月中下旬
|-
| [[朝鲜半岛]] || 长马（jangma） || 六月下旬至七月下旬
|}

== 气候特点 ==
* 梅雨开始之日称为'''入梅'''，结束之日称为'''出梅'''。
* 若某年梅雨期降雨明显偏少，称为“空梅”。
* 出梅以后又出现连续阴雨，民间称为“倒黄梅”。
* 梅雨期间日照少、湿度大，气温日较差较小。

== 影响 ==
适量的梅雨为[[水稻]]插秧后的生长提供了充足水分；但雨量过于集中时，容易引发[[洪涝]]和[[山体滑坡]]<ref name="qixiang" />。居民在这段时间里常需要注意室内除湿，-{zh-hans:晾晒;zh-hant:晾曬}-衣物也比较困难。

[[File:Rainy season street.jpg|thumb|梅雨季节的街道]]

== 参考文献 ==
{{reflist}}

[[Category:降水]]
[[Category:东亚气候]]

[[en:East Asian rainy season]]
[[ja:梅雨]]"""

WIKI_MOON = """'''月相'''是指从[[地球]]上观察到的[[月球]]被[[太阳]]照亮部分的形状变化。月球本身不发光，只反射太阳光；随着月球绕地球公转，太阳、地球和月球三者的相对位置不断改变，人们看到的月面明亮部分也随之盈亏变化<ref name="astro">{{cite book |author=林晓岚 |title=天文观测基础 |year=2017 |page=31}}</ref>。

[[File:Lunar phases diagram.svg|thumb|300px|月相形成示意图]]

== 周期 ==
月相变化的周期称为'''[[朔望月]]'''，平均长度约为29.53天，比月球绕地球公转一周的[[恒星月]]（约27.32天）略长。这是因为在一个月内地球也在绕太阳公转，月球需要多转一段角度才能回到与太阳相同的相对位置。[[农历]]的月份就是以朔望月为基础制定的，每月初一为朔，十五或十六前后为望。

== 主要月相 ==
一个朔望月中依次出现的月相为：
* [[新月]] → [[娥眉月]] → [[上弦月]] → [[盈凸月]]
* [[满月]] → [[亏凸月]] → [[下弦月]] → [[残月]]

{| class="wikitable"
! 月相 !! 大致农历日期 !! 日地月相对位置 !! 可见时段
|-
| 新月（朔） || 初一 || 月球位于地球与太阳之间 || 几乎不可见
|-
| 上弦月 || 初七、初八 || 月日角距约90° || 傍晚至午夜
|-
| 满月（望） || 十五、十六 || 地球位于太阳与月球之间 || 整夜可见
|-
| 下弦月 || 廿二、廿三 || 月日角距约90° || 午夜至清晨
|}

== 观测 ==
新月之后两三天，傍晚时分可以在西方低空看到一弯细细的娥眉月。有时在弯月暗面还能隐约看到灰色的轮廓，这是地球反射的阳光照亮了月面，称为'''[[地照]]'''。满月时月球与太阳方向相反，日落时从东方升起，整夜高悬。

== 文化 ==
在许多文化中，月相与节日和历法密切相关。例如[[中秋节]]在农历八月十五，正值满月前后；[[伊斯兰历]]的每个月则以新月后首次看到月牙为开始<ref>{{cite web |url=https://example.org/astro/calendar |title=月亮与历法 |accessdate=2023-06-18}}</ref>。

== 参考文献 ==
{{reflist}}

[[Category:月球]]
[[Category:天文学基础]]

[[en:Lunar phase]]"""

WIKI_NARROW_GAUGE = """{{Distinguish|轻轨}}
'''窄轨铁路'''是指[[轨距]]小于{{RailGauge|1435mm}}[[标准轨距]]的铁路。窄轨铁路的路基较窄，允许的曲线半径较小，建造成本低于标准轨铁路，因此常见于山区、森林、矿区以及早期修建的地方铁路<ref name="rail">{{cite book |author=周铭 |title=铁路线路概论 |year=2014 |page=19}}</ref>。

== 常见轨距 ==
{| class="wikitable sortable"
! 轨距 !! 俗称 !! 使用实例
|-
| {{RailGauge|1067mm}} || 开普轨距 || [[日本]]的大部分在来线、[[台湾铁路]]
|-
| {{RailGauge|1000mm}} || 米轨 || [[滇越铁路]]
|-
| {{RailGauge|762mm}} || || [[阿里山森林铁路]]
|-
| {{RailGauge|600mm}} || || 部分矿山和林区铁路
|}

== 优点与缺点 ==
窄轨铁路的主要优点是工程量小、造价低，能够适应陡峭曲折的地形。缺点是运量和速度有限，车辆稳定性较差；与标准轨铁路相接时，旅客需要换乘，货物需要转运，或者使用-{zh-hans:可变轨距列车;zh-hant:變軌距列車}-。

== 现状 ==
随着公路运输的发展，许多窄轨铁路在二十世纪后半叶停运或改建为标准轨。不过，也有一些线路被保留下来，作为'''[[观光铁路]]'''继续运行，在山间穿行的小火车吸引了大量游客<ref>{{cite news |title=山区小火车重新开行 |work=铁道旅游 |date=2021-04-02}}</ref>。
* 保留蒸汽机车牵引的线路往往成为铁路爱好者的热门目的地。
* 部分废弃的林区铁路已改建为自行车道。

[[File:Narrow gauge train in forest.jpg|thumb|林区中的窄轨小火车]]

== 参考文献 ==
{{reflist}}

{{Rail gauges}}

[[Category:窄轨铁路|*]]
[[Category:铁路轨距]]

[[en:Narrow-gauge railway]]"""

WIKI_TEMPLATE = """{{Navbox
| name   = 云岭镇
| title  = [[云岭镇]]
| group1 = 地理
| list1  = [[青溪河]]{{·}}[[白沙湖]]{{·}}[[云岭山脉]]
| group2 = 交通
| list2  = [[云岭站]]{{·}}[[老石桥]]
| group3 = 文化
| list3  = [[采茶节]]{{·}}[[云岭镇老街|老街]]
}}<noinclude>
{{Documentation}}
[[Category:地理导航模板]]
</noinclude>"""

WIKI_CATEGORY = """本分类收录与[[河流]]有关的条目。
{{Commonscat|Rivers}}
{{CatAutoTOC}}

[[Category:水体]]
[[Category:自然地理]]"""

WIKI_REDIRECT = """#REDIRECT [[青溪河]]

{{Redirect from short name}}"""

# (title, ns, page id, revision id, parent id, timestamp,
#  contributor, comment, text or None, redirect target or None)
# contributor is ("user", name, id) or ("ip", address).
_WIKI_PAGES = [
    ("青溪河", 0, 21503, 80012345, 79988410, "2023-11-02T08:15:30Z",
     ("user", "溪畔编者", 482211), "/* 历史 */ 补充来源", WIKI_QINGXI, None),
    ("青溪", 0, 21504, 61022378, None, "2020-07-14T02:41:09Z",
     ("user", "溪畔编者", 482211), "重定向页面至[[青溪河]]", WIKI_REDIRECT, "青溪河"),
    ("云岭镇", 0, 21517, 79877102, 79550028, "2023-10-21T13:02:47Z",
     ("user", "Lanting", 309117), "更新人口数据", WIKI_YUNLING, None),
    ("Template:云岭镇", 10, 21518, 70233941, 70233870, "2022-02-09T10:30:00Z",
     ("user", "Lanting", 309117), "新增文化组", WIKI_TEMPLATE, None),
    ("石拱橋", 0, 21530, 80104412, 79120333, "2023-11-09T17:26:05Z",
     ("user", "橋樑愛好者", 551902), "/* 歷史 */", WIKI_BRIDGE_HANT, None),
    ("烏龍茶", 0, 21532, 79966031, 79610274, "2023-10-28T04:55:13Z",
     ("ip", "203.0.113.27"), "", WIKI_OOLONG_HANT, None),
    ("Category:河流", 14, 21541, 55410026, 55410011, "2019-05-30T09:12:44Z",
     ("user", "分类整理", 120045), "", WIKI_CATEGORY, None),
    ("白沙湖市图书馆", 0, 21558, 80230876, 80011952, "2023-11-18T06:33:21Z",
     ("user", "书架旁", 633017), "更新服务数据", WIKI_LIBRARY, None),
    ("梅雨", 0, 21563, 79702210, 79455013, "2023-10-05T22:18:39Z",
     ("user", "云层观测员", 418870), "/* 各地梅雨期 */ 修正", WIKI_MEIYU, None),
    ("蒸笼", 0, 21570, 78811045, 78810990, "2023-08-16T11:04:52Z",
     ("ip", "198.51.100.14"), "", None, None),
    ("月相", 0, 21582, 80175530, 79803125, "2023-11-14T15:47:08Z",
     ("user", "林间观星", 702334), "", WIKI_MOON, None),
    ("窄轨铁路", 0, 21596, 79930417, 79315566, "2023-10-25T07:09:26Z",
     ("user", "铁道迷小周", 285140), "/* 常见轨距 */ 加入模板", WIKI_NARROW_GAUGE, None),
]

_SITEINFO_NAMESPACES = [
    (-2, "Media"), (-1, "Special"), (0, ""), (1, "Talk"), (2, "User"),
    (3, "User talk"), (4, "Wikipedia"), (5, "Wikipedia talk"), (6, "File"),
    (7, "File talk"), (8, "MediaWiki"), (9, "MediaWiki talk"),
    (10, "Template"), (11, "Template talk"), (12, "Help"), (13, "Help talk"),
    (14, "Category"), (15, "Category talk"), (100, "Portal"),
    (101, "Portal talk"), (118, "Draft"), (119, "Draft talk"),
    (828, "Module"), (829, "Module talk"),
]


def _xml_escape(s: str) -> str:
    return (s.replace("&", "&amp;").replace("<", "&lt;")
            .replace(">", "&gt;").replace('"', "&quot;"))


def _mediawiki_sha1(text: str) -> str:
    """MediaWiki's revision sha1: SHA-1 in base 36, zero-padded to 31."""
    n = int(hashlib.sha1(text.encode("utf-8")).hexdigest(), 16)
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while n:
        n, r = divmod(n, 36)
        out = digits[r] + out
    return out.rjust(31, "0")


def _zhwiki_xml() -> str:
    lines = [
        '<mediawiki xmlns="http://www.mediawiki.org/xml/export-0.10/" '
        'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
        'xsi:schemaLocation="http://www.mediawiki.org/xml/export-0.10/ '
        'http://www.mediawiki.org/xml/export-0.10.xsd" version="0.10" xml:lang="zh">',
        "  <siteinfo>",
        "    <sitename>维基百科</sitename>",
        "    <dbname>zhwiki</dbname>",
        "    <base>https://zh.wikipedia.org/wiki/Wikipedia:%E9%A6%96%E9%A1%B5</base>",
        "    <generator>MediaWiki 1.42.0-wmf.10</generator>",
        "    <case>first-letter</case>",
        "    <namespaces>",
    ]
    for key, name in _SITEINFO_NAMESPACES:
        if name:
            lines.append(f'      <namespace key="{key}" case="first-letter">{name}</namespace>')
        else:
            lines.append(f'      <namespace key="{key}" case="first-letter" />')
    lines += ["    </namespaces>", "  </siteinfo>"]
    for (title, ns, pid, rid, parent, ts, contrib, comment, text, redirect) in _WIKI_PAGES:
        lines += [
            "  <page>",
            f"    <title>{_xml_escape(title)}</title>",
            f"    <ns>{ns}</ns>",
            f"    <id>{pid}</id>",
        ]
        if redirect is not None:
            lines.append(f'    <redirect title="{_xml_escape(redirect)}" />')
        lines += ["    <revision>", f"      <id>{rid}</id>"]
        if parent is not None:
            lines.append(f"      <parentid>{parent}</parentid>")
        lines += [f"      <timestamp>{ts}</timestamp>", "      <contributor>"]
        if contrib[0] == "user":
            lines += [f"        <username>{_xml_escape(contrib[1])}</username>",
                      f"        <id>{contrib[2]}</id>"]
        else:
            lines.append(f"        <ip>{contrib[1]}</ip>")
        lines.append("      </contributor>")
        if comment:
            lines.append(f"      <comment>{_xml_escape(comment)}</comment>")
        lines += ["      <model>wikitext</model>", "      <format>text/x-wiki</format>"]
        if text is not None:
            nbytes = len(text.encode("utf-8"))
            lines.append(f'      <text bytes="{nbytes}" xml:space="preserve">'
                         f"{_xml_escape(text)}</text>")
            lines.append(f"      <sha1>{_mediawiki_sha1(text)}</sha1>")
        else:
            # Malformed on purpose: a revision with no <text> element at all.
            lines.append("      <sha1 />")
        lines += ["    </revision>", "  </page>"]
    lines.append("</mediawiki>")
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------
# wikiextractor (plain <doc> blocks and --json)
# ---------------------------------------------------------------------------

# Traditional-script plain-text version of the zhwiki article 月相 above (the
# same page as extracted from a zh-hant rendered dump): a near-duplicate.
EXTRACT_MOON_HANT = [
    "月相是指從地球上觀察到的月球被太陽照亮部分的形狀變化。月球本身不發光，只反射太陽光；"
    "隨著月球繞地球公轉，太陽、地球和月球三者的相對位置不斷改變，人們看到的月面明亮部分也隨之盈虧變化。",
    "月相變化的週期稱為朔望月，平均長度約為29.53天，比月球繞地球公轉一周的恆星月（約27.32天）略長。"
    "這是因為在一個月內地球也在繞太陽公轉，月球需要多轉一段角度才能回到與太陽相同的相對位置。"
    "農曆的月份就是以朔望月為基礎制定的，每月初一為朔，十五或十六前後為望。",
    "一個朔望月中依次出現的月相為：",
    "新月之後兩三天，傍晚時分可以在西方低空看到一彎細細的娥眉月。有時在彎月暗面還能隱約看到灰色的輪廓，"
    "這是地球反射的陽光照亮了月面，稱為地照。滿月時月球與太陽方向相反，日落時從東方升起，整夜高懸。",
    "在許多文化中，月相與節日和曆法密切相關。例如中秋節在農曆八月十五，正值滿月前後；"
    "伊斯蘭曆的每個月則以新月後首次看到月牙為開始。",
]

EXTRACT_LIGHTHOUSE = [
    "灯塔是建在海岸、岛屿或航道附近的高塔，塔顶装有强光源，用来在夜间或能见度低时为船只指示位置和航向。"
    "灯塔通常漆有醒目的颜色或条纹，白天也可以作为航行标志。",
    "早期的灯塔依靠燃烧木柴、煤炭或油料发光，十九世纪以后逐渐改用透镜聚光。"
    "菲涅耳透镜由许多同心环状的棱镜组成，能够把灯光汇聚成一束，使光线传到数十公里以外。"
    "电力普及后，大多数灯塔改用电灯，并逐步实现了自动化，不再需要守塔人常驻。",
    "每座灯塔都有特定的灯质，即闪光的颜色、次数和周期，航海者可以对照航标表辨认出所看到的是哪一座灯塔。"
    "在雾天，一些灯塔还会鸣放雾号作为补充。",
    "如今卫星导航已经十分普及，但灯塔仍是重要的辅助航标。一些历史悠久的灯塔被列为保护建筑，并向游客开放。",
]

EXTRACT_TOFU = [
    "豆腐是以大豆为主要原料制成的食品，质地柔软，富含蛋白质，是东亚饮食中常见的食材。",
    "制作豆腐时，先将浸泡过的大豆磨成豆浆，煮沸后滤去豆渣，再加入盐卤或石膏等凝固剂，"
    "使豆浆中的蛋白质凝结成豆花，最后压去多余水分即成。凝固剂和压制程度不同，得到的豆腐口感也不同："
    "压得较少的称为嫩豆腐，压得较多的称为老豆腐。",
    "豆腐的吃法很多，可以凉拌、煎、炖，也可以做成汤。许多地方还有各具特色的-{zh-hans:豆制品;zh-hant:豆製品}-，"
    "例如豆腐干、油豆腐和经过发酵的腐乳。",
    "在日本，豆腐同样是传统食材，常见于味噌汤和火锅中。近年来，豆腐作为植物性蛋白质的来源，在世界各地越来越受欢迎。",
]

EXTRACT_MIDAUTUMN = [
    "中秋节是东亚多个地区的传统节日，时间为农历八月十五。这一天前后月亮最圆，人们以月圆象征团圆，"
    "因此中秋节也被称为团圆节。",
    "中秋节的习俗包括赏月、吃月饼和家人团聚。月饼通常为圆形，馅料有莲蓉、豆沙、五仁和蛋黄等多种。"
    "在一些地方，孩子们会提着灯笼游玩，大人们则在夜晚猜灯谜。",
    "关于中秋节的传说很多，其中流传最广的是嫦娥奔月的故事。在-{zh-hans:韩国;zh-hant:韓國}-，"
    "农历八月十五称为秋夕，人们会回乡祭祖并制作松饼；在越南，中秋节被视为儿童的节日。",
]

# (id, title, paragraphs)
_WIKIEXTRACTOR_DOCS = [
    (21582, "月相", EXTRACT_MOON_HANT),
    (30417, "灯塔", EXTRACT_LIGHTHOUSE),
    (30455, "豆腐", EXTRACT_TOFU),
    (30468, "中秋节", EXTRACT_MIDAUTUMN),
]

EXTRACT_KITE = [
    "风筝是一种借助风力升空的飞行器，通常由骨架、蒙面和牵引线组成。放风筝时，人在地面拉住长线，"
    "使风筝迎风保持一定角度，气流在风筝表面产生升力，把它托在空中。",
    "传统风筝的骨架多用竹篾扎成，蒙面使用纸张或丝绢，并绘上鸟、蝴蝶、龙等图案。"
    "现代风筝更多采用碳纤维杆和尼龙布，重量轻，而且不怕潮湿。",
    "放风筝是许多地方春季的户外活动。一些城市会举办风筝节，展示巨型风筝、串式风筝和能够在空中做出特技动作的双线风筝。"
    "放风筝时应远离高压电线和机场附近区域。",
]

EXTRACT_OBSERVATORY = [
    "天文台是专门进行天文观测和研究的机构或设施。典型的光学天文台建在远离城市灯光、空气干燥且大气稳定的高山上，"
    "主体建筑常带有可以旋转和开合的圆顶，以便望远镜对准天空的不同方向。",
    "除了光学望远镜，许多天文台还配备射电望远镜，用来接收来自天体的无线电波。"
    "由于地球大气会吸收部分波段的电磁辐射，一些观测需要借助发射到太空中的空间望远镜完成。",
    "许多天文台设有科普开放日，公众可以在工作人员的指导下通过望远镜观看月球环形山、土星环和木星的卫星。",
]

EXTRACT_BAMBOO = [
    "竹子是禾本科竹亚科植物的统称，茎秆中空而有节，生长速度很快。有些种类的竹笋在生长旺季一天之内可以长高数十厘米。",
    "竹子在东亚和东南亚的生活中用途广泛。竹笋可以食用，竹秆可用于建造房屋、搭建脚手架、制作家具和乐器，"
    "竹纤维还能用来造纸和纺织。",
    "由于竹子四季常青、挺拔有节，在中国文化中常被用来比喻坚韧和谦虚的品格，与梅、兰、菊并称为“四君子”。",
]

# (id, revid, title, paragraphs)
_WIKIEXTRACTOR_JSON_DOCS = [
    ("30502", "78120944", "风筝", EXTRACT_KITE),
    ("30519", "79004217", "天文台", EXTRACT_OBSERVATORY),
    ("30533", "77658310", "竹子", EXTRACT_BAMBOO),
]


def _article_text(title: str, paragraphs: list[str]) -> str:
    """Title line, blank line, paragraphs separated by blank lines."""
    return title + "\n\n" + "\n\n".join(paragraphs)


def _wiki_url(page_id) -> str:
    return f"https://zh.wikipedia.org/wiki?curid={page_id}"


def _wikiextractor() -> str:
    out = []
    for pid, title, paras in _WIKIEXTRACTOR_DOCS:
        out.append(f'<doc id="{pid}" url="{_wiki_url(pid)}" title="{title}">\n'
                   f"{_article_text(title, paras)}\n</doc>\n")
    return "".join(out)


def _wikiextractor_json() -> str:
    out = []
    for pid, revid, title, paras in _WIKIEXTRACTOR_JSON_DOCS:
        obj = {"id": pid, "revid": revid, "url": _wiki_url(pid), "title": title,
               "text": _article_text(title, paras)}
        out.append(json.dumps(obj, ensure_ascii=False) + "\n")
    return "".join(out)


# ---------------------------------------------------------------------------
# wiki2019zh
# ---------------------------------------------------------------------------

EXTRACT_CANAL = [
    "运河是人工开凿的水道，用于航运、灌溉、排水或供水。与天然河流不同，运河的走向和水深可以根据需要设计，"
    "常常连接两条河流、湖泊或海洋，从而缩短航程。",
    "当运河需要穿越地势起伏的地区时，往往要修建船闸。船闸由上下两道闸门和其间的闸室组成，"
    "通过向闸室注水或放水，使船只像乘坐电梯一样升降，逐级越过高差。",
    "世界上著名的运河包括中国的京杭大运河、连接地中海与红海的苏伊士运河以及连接大西洋与太平洋的巴拿马运河。"
    "其中京杭大运河开凿历史悠久，是世界上最长的古代运河之一。",
]

EXTRACT_PORCELAIN = [
    "瓷器是以瓷土等原料经成型、施釉并在高温下烧制而成的器物。与陶器相比，瓷器胎体更加致密，吸水率低，敲击时声音清脆。",
    "烧制瓷器一般需要一千二百摄氏度以上的高温。釉料中所含的金属氧化物在不同的烧成气氛下会呈现不同的颜色，"
    "例如含铁的釉可以烧出青色或褐色，含铜的釉可以烧出红色。",
    "瓷器很早就通过海上和陆上贸易传到世界各地，英语中的“china”一词也因此带有瓷器的意思。"
    "江西景德镇长期以来是重要的制瓷中心，有“瓷都”之称。",
]

EXTRACT_MIGRATORY_BIRDS = [
    "候鸟是指随着季节变化，在繁殖地和越冬地之间定期迁徙的鸟类。常见的候鸟有大雁、燕子、鹤以及许多种类的鸻鹬类水鸟。",
    "候鸟迁徙的距离差别很大，有的只是在山地的不同海拔之间移动，有的则每年往返于南北两个半球，飞行上万公里。"
    "研究认为，鸟类在迁徙中会利用太阳、星辰、地磁场和地标等多种线索辨别方向。",
    "迁徙途中，候鸟需要在湿地、滩涂等停歇地补充体力，因此保护沿途的停歇地对维持候鸟种群十分重要。"
    "每年春秋两季，许多观鸟爱好者会到湖泊和海岸观察过境的鸟群。",
]

# (id, title, paragraphs); 灯塔 is an exact copy of the wikiextractor article
# (same text) under a different id.
_WIKI2019ZH_DOCS = [
    ("4417", "运河", EXTRACT_CANAL),
    ("9032", "灯塔", EXTRACT_LIGHTHOUSE),
    ("12870", "瓷器", EXTRACT_PORCELAIN),
    ("15603", "候鸟", EXTRACT_MIGRATORY_BIRDS),
]


def _wiki2019zh() -> str:
    out = []
    for pid, title, paras in _WIKI2019ZH_DOCS:
        obj = {"id": pid, "url": _wiki_url(pid), "title": title,
               "text": _article_text(title, paras)}
        out.append(json.dumps(obj, ensure_ascii=False) + "\n")
    return "".join(out)


# ---------------------------------------------------------------------------
# news2016zh
# ---------------------------------------------------------------------------

_NEWS_METRO_CONTENT = (
    "今天上午六点，白沙湖市地铁2号线正式开通试运营。该线路全长24.6公里，共设车站19座，连接湖滨新区与老城区，"
    "全程运行时间约45分钟。试运营初期，列车高峰时段行车间隔为6分钟，平峰时段为8分钟。"
    "市民王女士说：“以前从新区到老城坐公交要一个多小时，现在方便多了。”"
    "为方便换乘，沿线12个车站周边调整了公交线路，并增设了共享单车停放点。"
    "运营方提醒，试运营期间部分出入口暂未开放，乘客出行前可通过官方网站查询车站信息。"
)


def _punctuation_variant(s: str) -> str:
    """Same characters, different punctuation and whitespace (as a reposting
    site might render the story)."""
    s = (s.replace("，", ", ").replace("：“", ': "').replace("”", '"')
         .replace("。", "。 "))
    return "\u3000\u3000" + s.rstrip() + "  "


_NEWS = [
    {"news_id": "610130831", "keywords": "导游，门票",
     "title": "云岭镇老街景区淡季门票半价 导游讲解免费",
     "desc": "即日起至明年二月底，云岭镇老街景区实行淡季票价，门票由60元降至30元。",
     "source": "青溪新闻网", "time": "11-08 09:30",
     "content": (
         "记者从云岭镇旅游服务中心获悉，即日起至明年二月底，老街景区实行淡季票价，门票由每人60元降至30元，"
         "持学生证、老年证的游客可免票入园。淡季期间，景区还在游客中心提供免费导游讲解服务，"
         "每天上午十点和下午两点各安排一场，每场约一小时。工作人员介绍，讲解路线从老石桥出发，"
         "经过茶叶作坊和百年祠堂，最后到达青溪河边的观景平台。游客如需单独讲解，可提前一天电话预约。"
         "景区提醒，冬季山区早晚气温较低，游客出行时请注意携带保暖衣物。")},
    {"news_id": "610241577", "keywords": "地铁，试运营，公交",
     "title": "白沙湖市地铁2号线今日开通试运营",
     "desc": "地铁2号线全长24.6公里，设车站19座，连接湖滨新区与老城区。",
     "source": "白沙湖晚报", "time": "12-28 07:15",
     "content": _NEWS_METRO_CONTENT},
    {"news_id": "609873402", "keywords": "早稻，丰收，农机",
     "title": "青溪河沿岸早稻喜获丰收",
     "desc": "连日来，青溪河沿岸的早稻陆续进入收割期，亩产比去年提高约一成。",
     "source": "云岭县融媒体中心", "time": "07-20 16:42",
     "content": (
         "连日来，青溪河沿岸的早稻陆续进入收割期。在云岭镇下游的柳湾村，几台收割机在金黄的稻田里来回作业，"
         "脱粒后的稻谷被直接装车运往烘干中心。村里的种粮大户介绍，今年春季雨水适中，病虫害较轻，"
         "早稻亩产比去年提高了约一成。当地农业部门表示，今年全镇推广了机械化育秧和病虫害统一防治，"
         "早稻种植面积稳定在三千亩左右。为避免抢收期间遇上阴雨天气，烘干中心实行二十四小时运转，"
         "确保新收稻谷及时烘干入库。")},
    # index 3: written truncated (broken JSON), see _news2016zh()
    {"news_id": "610177260", "keywords": "图书馆，夜间开放，自习",
     "title": "市图书馆自修室延长开放至晚上十点",
     "desc": "从下月一日起，市图书馆一楼自修室每天开放至晚上十点。",
     "source": "白沙湖晚报", "time": "02-27 10:05",
     "content": (
         "从下月一日起，白沙湖市图书馆一楼自修室每天开放至晚上十点，比原来延长三个小时。"
         "图书馆负责人介绍，近年来晚间到馆自习的读者明显增多，其中既有备考的学生，也有下班后来看书的上班族。"
         "延长开放期间，自修室提供免费无线网络和充电插座，读者凭读者证刷卡入场。"
         "晚上八点以后，馆内其他阅览区将陆续关闭，借还书可使用一楼的自助借还机。")},
    {"news_id": "609955118", "keywords": "马拉松，交通管制",
     "title": "白沙湖半程马拉松周日开跑 部分道路临时交通管制",
     "desc": "比赛当天六点至十二点，环湖路、滨湖路等路段将分时段实行交通管制。",
     "source": "湖滨都市报", "time": "04-14 18:20",
     "content": (
         "本届白沙湖半程马拉松将于本周日上午七点半在湖滨广场鸣枪起跑，赛事设半程马拉松和五公里健身跑两个项目，"
         "共有约八千名跑者报名参加。比赛路线沿白沙湖环湖路展开，途经湿地公园和市图书馆，终点设在市体育中心。"
         "交警部门提醒，比赛当天六点至十二点，环湖路、滨湖路等路段将分时段实行交通管制，"
         "途经相关区域的公交线路临时绕行。组委会在沿线设置了十个补给站和多个医疗点，"
         "并建议跑者赛前做好热身，量力而行。")},
    # a repost of the metro story: other title, same text up to punctuation
    # and whitespace
    {"news_id": "610258893", "keywords": "地铁，2号线",
     "title": "地铁2号线开通 新区到老城只需45分钟",
     "desc": "白沙湖市地铁2号线开通试运营，全程运行时间约45分钟。",
     "source": "湖滨都市报", "time": "12-28 11:48",
     "content": _punctuation_variant(_NEWS_METRO_CONTENT)},
]
_NEWS_BROKEN_INDEX = 3


def _news2016zh() -> str:
    out = []
    for i, obj in enumerate(_NEWS):
        line = json.dumps(obj, ensure_ascii=False)
        if i == _NEWS_BROKEN_INDEX:
            line = line[: len(line) // 2]  # truncated mid-record
        out.append(line + "\n")
    return "".join(out)


# ---------------------------------------------------------------------------
# baike2018qa
# ---------------------------------------------------------------------------

_BAIKE = [
    {"qid": "qid_5892417309236611421", "category": "生活-美食",
     "title": "红烧肉怎样做才不油腻？",
     "desc": "每次做红烧肉都觉得太腻了，有什么窍门吗？",
     "answer": (
         "1.选五花肉时挑肥瘦相间、层次分明的，切成麻将大小的块。\r\n"
         "2.冷水下锅焯水，加几片姜和一点料酒，煮出浮沫后捞出洗净。\r\n"
         "3.锅里少放油，先用小火把肉块煸到表面微黄，逼出一部分油脂，再把多余的油倒掉。\r\n"
         "4.加冰糖炒出糖色，放酱油、葱姜和热水，小火炖一个小时左右。\r\n"
         "5.最后大火收汁。炖的时候放几块香菇或者土豆，可以吸掉一些油，吃起来就不那么腻了。")},
    {"qid": "qid_2540946131115409959", "category": "教育/科学-理工学科-天文学",
     "title": "为什么白天有时候也能看到月亮？",
     "desc": "",
     "answer": (
         "月亮本身不发光，我们看到的是它反射的太阳光。\r\n"
         "月亮离地球很近，反射的光足够亮，只要它在地平线以上、又不太靠近太阳的方向，即使在白天也能透过蓝天看到。\r\n"
         "一般在农历初七、初八前后的下午，以及农历二十二、二十三前后的上午，最容易在白天看到月亮。")},
    {"qid": "qid_7731850264619023384", "category": "生活-家居",
     "title": "木地板受潮起拱了怎么办？",
     "desc": "家住一楼，梅雨季节过后发现客厅的木地板有几块拱起来了。",
     "answer": (
         "先别急着把它踩平。\r\n"
         "第一步，打开门窗通风，有条件的话开除湿机或者空调除湿，让地板慢慢干燥，不要用电暖器直接烤。\r\n"
         "第二步，检查受潮原因，看看是不是墙角渗水、水管漏水或者地面返潮。\r\n"
         "第三步，等地板干透以后，如果还是不平，可以请安装师傅拆开踢脚线，在墙边重新留出伸缩缝，一般都能恢复。\r\n"
         "如果地板已经发黑、变形严重，就只能局部更换了。")},
    {"qid": "qid_4468102937715530176", "category": "文化/艺术-历史话题",
     "title": "古代的石拱桥为什么能保存几百年？",
     "desc": "老家有一座几百年的石桥，现在还能走拖拉机。",
     "answer": (
         "主要有三个原因。\r\n"
         "一是结构合理，拱形能把桥面上的重量转化为沿着拱圈传递的压力，而石头最擅长承受压力。\r\n"
         "二是材料耐久，花岗岩之类的石料不怕水泡，也不会腐烂。\r\n"
         "三是历代都有人维修，很多老桥的桥面和栏杆其实已经换过好几次了。")},
    # answer shorter than 10 characters: dropped by a minimum-length rule
    {"qid": "qid_6019384725510398842", "category": "文化/艺术-民俗传统",
     "title": "什么东西越洗越脏？",
     "desc": "",
     "answer": "是水。"},
]


def _baike2018qa() -> str:
    return "".join(json.dumps(o, ensure_ascii=False) + "\n" for o in _BAIKE)


# ---------------------------------------------------------------------------
# webtext2019zh
# ---------------------------------------------------------------------------

_WEBTEXT = [
    {"qid": 65618973, "title": "在城市里怎样拍摄星空？",
     "desc": "住在市区，光污染比较严重。<br>有单反和三脚架，想试试拍星星，参数应该怎么设置？",
     "topic": "摄影", "star": 3,
     "content": (
         "市区光污染重，想拍银河基本不现实，但拍亮星、月亮和星轨还是可以的。先找一个视野开阔、"
         "周围没有路灯直射的地方，比如公园里的草坪或者楼顶。相机用手动模式，对焦时把镜头拉到无穷远，"
         "再用实时取景放大一颗亮星微调。参数可以从光圈开到最大、ISO 800、快门10秒开始尝试，"
         "根据画面亮度再调整。想拍星轨的话，可以连续拍几百张，后期再叠加。另外记得关闭镜头防抖，"
         "用快门线或者两秒延时来避免抖动。"),
     "answer_id": 545576062, "answerer_tags": "天文爱好者，风光摄影"},
    {"qid": 65702148, "title": "阳台种番茄用多大的花盆合适？",
     "desc": "南向阳台，每天大概有五六个小时日照。",
     "topic": "园艺", "star": 4,
     "content": (
         "番茄的根系比较发达，普通大番茄建议用口径和深度都在三十厘米以上的盆，一盆只种一棵；"
         "樱桃番茄可以稍小一些，但最好也不要小于二十五厘米。盆太小的话，夏天土干得快，植株容易缺水，"
         "结果也少。土可以用园土混合腐熟的有机肥和少量珍珠岩，保证透气排水。"
         "南向阳台日照条件不错，记得及时搭架子，把多余的侧枝打掉。"),
     "answer_id": 545812390, "answerer_tags": "阳台种菜五年"},
    {"qid": 65733390, "title": "如何看待城市图书馆延长夜间开放时间？",
     "desc": "我们这里的市图书馆最近把自修室开放到晚上十点了。<br>大家觉得有必要吗？",
     "topic": "图书馆", "star": 5,
     "content": (
         "我觉得很有必要。很多上班族白天没有时间，只有晚上才能去图书馆看书或者自习。"
         "延长开放时间以后，晚上去的人其实不少，有准备考试的学生，也有下班后带孩子来借绘本的家长。"
         "当然，夜间开放会增加人员和水电成本，可以先在一个区域试点，根据使用情况再调整。"),
     "answer_id": 546003771, "answerer_tags": ""},
    {"qid": 65750812, "title": "泡绿茶应该用多少度的水？",
     "desc": "",
     "topic": "茶", "star": 2,
     "content": (
         "一般建议用八十到八十五度左右的水。绿茶没有经过发酵，芽叶比较细嫩，如果直接用刚烧开的水冲，"
         "容易把茶叶烫熟，汤色发黄，还会带出苦涩味。简单的办法是把水烧开后晾几分钟再冲，"
         "或者先往杯子里倒水，再放茶叶。特别细嫩的茶可以用玻璃杯冲泡，还能欣赏茶叶在水里慢慢舒展的样子。"),
     "answer_id": 546120458, "answerer_tags": "茶艺师"},
    {"qid": 65781265, "title": "为什么铁轨下面要铺碎石？",
     "desc": "坐火车的时候看到铁轨下面都是一堆石子，<br>为什么不直接铺在水泥地上？",
     "topic": "铁路", "star": 4,
     "content": (
         "这些碎石叫道砟，作用主要有几个：一是把列车传到轨枕上的压力分散到更大的路基面积上；"
         "二是石子之间有空隙，下雨时可以迅速排水，防止路基被泡软；三是石子互相卡住，能固定轨枕，"
         "防止轨道横向和纵向移动；四是有一定弹性，可以吸收振动、降低噪音。而且道砟轨道维修起来比较方便，"
         "哪里下沉了，补充石子再捣固就行。当然，高速铁路和地铁隧道里也有不少采用无砟轨道，"
         "就是把轨道直接固定在混凝土道床上。"),
     "answer_id": 546233017, "answerer_tags": "铁路工务段职工"},
]


def _webtext2019zh() -> str:
    return "".join(json.dumps(o, ensure_ascii=False) + "\n" for o in _WEBTEXT)


# ---------------------------------------------------------------------------
# ChineseWebText / CCNet
# ---------------------------------------------------------------------------

_CWT_PAGES = [
    # normal news page
    {"url": "https://news.example.com/local/2023/01/wetland-park-phase2.html",
     "date_download": "2023-02-01T06:14:52Z",
     "source_domain": "news.example.com",
     "title": "白沙湖湿地公园二期工程完工 新增三条观鸟步道",
     "lines": [
         "白沙湖湿地公园二期工程完工 新增三条观鸟步道",
         "记者昨日从市园林部门了解到，白沙湖湿地公园二期工程已经全部完工，将于下周一起向市民免费开放。",
         "二期工程位于湖区东北侧，占地约一百二十公顷，主要包括湿地修复、观鸟步道和科普展示馆三部分。",
         "施工期间，工程人员清理了淤积的水道，恢复了大片芦苇荡和浅水滩涂，为越冬候鸟提供了更多觅食和栖息的空间。",
         "新建的三条观鸟步道总长约五公里，沿途设置了六座观鸟屋和多块鸟类识别牌。",
         "科普展示馆以图片、标本和互动屏幕介绍湿地的形成过程，周末还有志愿者带领市民认识常见水鸟。",
         "园林部门提醒，观鸟时请保持安静，不要投喂野生鸟类，也不要操控无人机靠近鸟群。",
     ],
     "extra_original_lines": 9, "cc_segment_id": "1674764494826.88", "cc_file": "00412",
     "language_score": 0.99, "perplexity": 231.6, "bucket": "head"},
    # normal: community cooking class
    {"url": "https://www.example.org/community/cooking-class-2023",
     "date_download": "2023-02-03T19:40:07Z",
     "source_domain": "www.example.org",
     "title": "社区厨房开设周末烹饪课 老师傅手把手教做家常菜",
     "lines": [
         "社区厨房开设周末烹饪课 老师傅手把手教做家常菜",
         "每到周六上午，滨湖社区活动中心的公共厨房里总是飘出阵阵饭菜香。",
         "社区从今年起开设免费的周末烹饪课，邀请退休的饭店厨师担任老师，每期教两道家常菜。",
         "第一课讲的是西红柿炒鸡蛋和清炒时蔬，老师傅从切菜的刀法讲起，再演示火候和下料的顺序。",
         "“鸡蛋要先炒到半熟盛出来，等西红柿出汁了再倒回去，这样鸡蛋才嫩。”老师傅一边示范一边讲解。",
         "不少年轻居民表示，平时工作忙，很少自己做饭，跟着学了几次，现在周末也愿意下厨了。",
         "社区工作人员介绍，课程每期限二十人，居民可在社区服务站报名。",
     ],
     "extra_original_lines": 12, "cc_segment_id": "1674764499654.54", "cc_file": "00188",
     "language_score": 0.98, "perplexity": 287.3, "bucket": "head"},
    # normal: astronomy explainer
    {"url": "https://science.example.net/sky/meteor-shower-guide",
     "date_download": "2023-02-06T02:27:31Z",
     "source_domain": "science.example.net",
     "title": "流星雨观测小指南",
     "lines": [
         "流星雨观测小指南",
         "流星是太空中的微小尘埃以极高的速度闯入地球大气层，与空气摩擦燃烧而产生的光迹。",
         "当地球穿过彗星留下的尘埃带时，短时间内会出现大量流星，看起来像是从天空中同一点向外辐射，这就是流星雨。",
         "观测流星雨不需要望远镜，用肉眼就可以，最重要的是找一个远离城市灯光、视野开阔的地方。",
         "到达观测地点后，先让眼睛在黑暗中适应二十分钟左右，尽量不要看手机屏幕。",
         "可以躺在防潮垫或躺椅上，面向辐射点附近但不必正对它的天区，这样视野更大。",
         "冬季夜间气温低，记得带上厚外套和热水，在野外观测时最好结伴同行。",
         "如果月亮很亮，较暗的流星会被月光掩盖，因此选择没有月亮的后半夜观测效果更好。",
     ],
     "extra_original_lines": 6, "cc_segment_id": "1674764500041.18", "cc_file": "00733",
     "language_score": 0.99, "perplexity": 198.4, "bucket": "head"},
    # mostly navigation / boilerplate lines with little content
    {"url": "http://www.example.com/news/show-1024.html",
     "date_download": "2023-02-04T11:52:18Z",
     "source_domain": "www.example.com",
     "title": "云岭镇老街夜市下月开放-云岭在线",
     "lines": [
         "首页",
         "新闻中心",
         "本地要闻",
         "当前位置：首页 > 新闻中心 > 本地要闻",
         "云岭镇老街夜市下月开放",
         "发布时间：2021-05-12 来源：本站 浏览次数：1024",
         "云岭镇老街夜市将于下月起每周五、周六晚间开放。",
         "上一篇：镇卫生院开展健康咨询活动",
         "下一篇：青溪河防汛演练顺利举行",
         "返回顶部",
         "联系我们",
         "网站地图",
         "扫一扫关注微信公众号",
         "版权所有 © 2021 云岭在线 保留所有权利",
         "备案号：ICP备00000000号-1",
     ],
     "extra_original_lines": 21, "cc_segment_id": "1674764499816.79", "cc_file": "00051",
     "language_score": 0.93, "perplexity": 912.7, "bucket": "middle"},
    # repetition spam
    {"url": "http://shop.example.com/zhuxi/pifa.html",
     "date_download": "2023-02-02T23:05:44Z",
     "source_domain": "shop.example.com",
     "title": "竹席批发_优质竹席厂家直销",
     "lines": ["竹席批发_优质竹席厂家直销"]
              + ["优质竹席厂家直销，价格优惠，欢迎来电咨询！"] * 24,
     "extra_original_lines": 3, "cc_segment_id": "1674764494974.98", "cc_file": "00620",
     "language_score": 0.99, "perplexity": 38.2, "bucket": "middle"},
    # mostly English, very few Han characters
    {"url": "https://teahouse.example.net/menu",
     "date_download": "2023-02-05T08:33:09Z",
     "source_domain": "teahouse.example.net",
     "title": "Riverside Tea House - Menu and Opening Hours",
     "lines": [
         "Riverside Tea House - Menu and Opening Hours",
         "Welcome to the Riverside Tea House, a small family-run cafe by the Qingxi River.",
         "We serve green tea, oolong tea and black tea from farms in the nearby hills.",
         "Opening hours: Monday to Saturday, 9:00 am - 8:00 pm. Closed on public holidays.",
         "Our signature drink is the osmanthus oolong (桂花乌龙), served hot or iced.",
         "Address: 18 Willow Lane, Yunling Town. Tel: +00 000 0000 0000",
         "欢迎光临",
     ],
     "extra_original_lines": 5, "cc_segment_id": "1674764501407.66", "cc_file": "00904",
     "language_score": 0.41, "perplexity": 1843.5, "bucket": "middle"},
]


def _ccnet_digest(text: str) -> str:
    return "sha1:" + base64.b32encode(hashlib.sha1(text.encode("utf-8")).digest()).decode("ascii")


def _chinesewebtext() -> str:
    out = []
    for page in _CWT_PAGES:
        lines = page["lines"]
        raw = "\n".join(lines)
        n = len(lines)
        extra = page["extra_original_lines"]
        # Spread the dropped original lines (headers, menus, ...) deterministically:
        # some before the first kept line, the rest after every third kept line.
        head = extra // 2
        line_ids = [head + k + k // 3 for k in range(n)]
        gaps = line_ids[-1] + 1 - n
        original_nlines = max(line_ids[-1] + 1 + (extra - gaps), line_ids[-1] + 1)
        original_length = len(raw) + 17 * (original_nlines - n)
        segment = page["cc_segment_id"]
        cc_segment = (f"crawl-data/CC-MAIN-2023-06/segments/{segment}/wet/"
                      f"CC-MAIN-20230126210844-20230127000844-{page['cc_file']}.warc.wet.gz")
        obj = {
            "url": page["url"],
            "date_download": page["date_download"],
            "digest": _ccnet_digest(raw),
            "length": len(raw),
            "nlines": n,
            "source_domain": page["source_domain"],
            "title": page["title"],
            "raw_content": raw,
            "cc_segment": cc_segment,
            "original_nlines": original_nlines,
            "original_length": original_length,
            "line_ids": line_ids,
            "language": "zh",
            "language_score": page["language_score"],
            "perplexity": page["perplexity"],
            "bucket": page["bucket"],
        }
        out.append(json.dumps(obj, ensure_ascii=False) + "\n")
    return "".join(out)


# ---------------------------------------------------------------------------
# plain google-research/bert format
# ---------------------------------------------------------------------------

_PLAIN_DOCS = [
    [
        "雨伞是一种用来遮挡雨水和阳光的日常用品。",
        "传统的油纸伞以竹子为骨架，伞面涂有桐油，可以防水。",
        "现代雨伞多用金属伞骨和尼龙伞面，有些还能自动开合。",
        "折叠伞体积小，方便放进背包。",
        "风很大的时候打伞，要握紧伞柄，以免伞面被吹翻。",
    ],
    [
        "小镇的邮局位于老街的东头，是一栋两层的小楼。",
        "邮局每天上午八点开门，下午五点半关门。",
        "除了寄信和包裹，这里还可以订阅报纸和杂志。",
        "柜台旁边的公告栏上贴着本周的投递安排。",
        "最近一批包裹的编号为ＡＢＣ１２３，预计周五到达。",
        "镇上的老人们常常坐在邮局门口的长椅上聊天。",
    ],
    [
        "面条是用面粉加水和成面团后，经过压、擀或拉制成的条状食品。",
        "北方许多地方以面条为主食，吃法多种多样。",
        "手擀面讲究面团要揉得光滑，擀得薄厚均匀。",
        "煮面时水要多，\u200b水开后再下面条，\u0007中途可以点一次凉水。",
        "煮好的面条过一遍凉水，口感会更加爽滑。",
    ],
    [
        "台风是生成于西北太平洋的强烈热带气旋。",
        "它的中心叫做台风眼，那里风力较小，天空有时甚至是晴朗的。",
        "台风眼周围的眼墙是风雨最猛烈的区域。",
        "台风登陆后失去了海洋提供的水汽和热量，强度通常会逐渐减弱。",
        "气象部门会根据台风的强度和路径发布不同级别的预警。",
        "收到预警后，居民应当加固门窗，收起阳台上的花盆等物品。",
        "暴雨期间尽量不要外出，更不要到海边观浪。",
    ],
]


def _plain() -> str:
    return "\n\n".join("\n".join(doc) for doc in _PLAIN_DOCS) + "\n"


# ---------------------------------------------------------------------------
# assembly
# ---------------------------------------------------------------------------

def _files() -> dict[str, bytes]:
    return {
        ZHWIKI: bz2.compress(_zhwiki_xml().encode("utf-8"), 9),
        WIKIEXTRACTOR: _wikiextractor().encode("utf-8"),
        WIKIEXTRACTOR_JSON: _wikiextractor_json().encode("utf-8"),
        WIKI2019ZH: _wiki2019zh().encode("utf-8"),
        NEWS2016ZH: _news2016zh().encode("utf-8"),
        BAIKE2018QA: _baike2018qa().encode("utf-8"),
        WEBTEXT2019ZH: _webtext2019zh().encode("utf-8"),
        CHINESEWEBTEXT: _chinesewebtext().encode("utf-8"),
        PLAIN: _plain().encode("utf-8"),
    }


def write_sample(out_dir) -> list[pathlib.Path]:
    """Write the bundled sample corpus (one file per supported input format)
    under ``out_dir``; return the paths written, sorted.

    Deterministic: the same bytes on every call.
    """
    root = pathlib.Path(out_dir)
    written = []
    for rel, data in _files().items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        written.append(path)
    return sorted(written)


_ZHWIKI_MAIN = [p for p in _WIKI_PAGES if p[1] == 0 and p[9] is None]

EXPECTED = {
    # documents per file; the broken JSON line and the text-less XML page count
    # as one each; redirects and non-main-namespace pages are not counted.
    "documents": {
        ZHWIKI: len(_ZHWIKI_MAIN),
        WIKIEXTRACTOR: len(_WIKIEXTRACTOR_DOCS),
        WIKIEXTRACTOR_JSON: len(_WIKIEXTRACTOR_JSON_DOCS),
        WIKI2019ZH: len(_WIKI2019ZH_DOCS),
        NEWS2016ZH: len(_NEWS),
        BAIKE2018QA: len(_BAIKE),
        WEBTEXT2019ZH: len(_WEBTEXT),
        CHINESEWEBTEXT: len(_CWT_PAGES),
        PLAIN: len(_PLAIN_DOCS),
    },
    "redirects": sum(1 for p in _WIKI_PAGES if p[9] is not None),
    "other_namespaces": sum(1 for p in _WIKI_PAGES if p[1] != 0),
    "malformed": {
        ZHWIKI: sum(1 for p in _ZHWIKI_MAIN if p[8] is None),
        NEWS2016ZH: 1,
    },
    # --- extra details (not required by every consumer) -------------------
    # 1-based line number of the truncated JSON line
    "broken_json_lines": {NEWS2016ZH: [_NEWS_BROKEN_INDEX + 1]},
    # title of the ns-0 page whose revision has no <text>
    "textless_pages": {ZHWIKI: ["蒸笼"]},
    # articles written in traditional characters: {path: [titles]}
    "traditional": {ZHWIKI: ["石拱橋", "烏龍茶"], WIKIEXTRACTOR: ["月相"]},
    # near-duplicate across dumps (script conversion): (path, title) pairs
    "near_duplicates": [[(ZHWIKI, "月相"), (WIKIEXTRACTOR, "月相")]],
    # byte-identical text under different ids: (path, id) pairs
    "exact_duplicates": [[(WIKIEXTRACTOR, "30417"), (WIKI2019ZH, "9032")]],
    # same content after removing whitespace and punctuation: (path, news_id)
    "normalized_duplicates": [[(NEWS2016ZH, "610241577"), (NEWS2016ZH, "610258893")]],
    # records whose body is shorter than 10 characters
    "short_records": {BAIKE2018QA: ["qid_6019384725510398842"]},
    # ChineseWebText pages meant to be rejected by quality rules, by url
    "boilerplate_pages": {CHINESEWEBTEXT: ["http://www.example.com/news/show-1024.html"]},
    "repetition_pages": {CHINESEWEBTEXT: ["http://shop.example.com/zhuxi/pifa.html"]},
    "low_han_pages": {CHINESEWEBTEXT: ["https://teahouse.example.net/menu"]},
}
EXPECTED["total_documents"] = sum(EXPECTED["documents"].values())


if __name__ == "__main__":
    if len(sys.argv) != 2:
        print("usage: python -m pipeline.sample OUT_DIR", file=sys.stderr)
        sys.exit(2)
    for p in write_sample(sys.argv[1]):
        print(p)
